"""One image file as a uint8 array: the decoder the image-folder pipeline, evaluation and prediction share.

Pillow defines the result: the first frame, transparency composited on black, converted to ``L`` or ``RGB``
with Pillow's conversions and resized with Pillow's bilinear filter (antialiased when shrinking).

Decoding itself is the costly part for small files, and most of it is Python in Pillow's format plugins
(a 28x28 PNG: about 170 us to open and load, 15 us of it in zlib), which holds the GIL, so more worker threads
do not help. Where OpenCV is installed (``opencv-python-headless``, a dependency of kzoo), PNG, JPEG, BMP and
WebP files are decoded by ``cv2.imdecode`` instead: C++ that releases the GIL, the same pixels for the lossless
formats (the tests compare them with Pillow's) and the same libjpeg-turbo decode for JPEG. Anything unusual
(an alpha channel, 16-bit samples, a file OpenCV refuses, a JPEG without its end marker, which libjpeg would
pad instead of failing) goes to Pillow, which then decodes it or raises the error that names the file.
The conversion and the resize are Pillow's in both cases, on the decoded array.
"""

from __future__ import annotations

import os

import numpy as np

# extensions OpenCV decodes to the same pixels as Pillow (JPEG: the same libjpeg-turbo decode)
_OPENCV_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
_JPEG = {".jpg", ".jpeg"}
_cv2 = None


def _opencv():
    """The ``cv2`` module, or ``False`` where it cannot be imported (decoding then is Pillow's alone)."""
    global _cv2
    if _cv2 is None:
        if os.environ.get("KZOO_DECODER", "").lower() == "pillow":
            _cv2 = False
            return _cv2
        try:
            import cv2

            try:  # OpenCV's own warnings about a broken file: Pillow's error names it instead
                cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
            except AttributeError:
                pass
            _cv2 = cv2
        except ImportError:
            _cv2 = False
    return _cv2


def _decode_with_opencv(path):
    """The decoded pixels (``(H, W)`` grey or ``(H, W, 3)`` RGB uint8), or ``None`` for Pillow to decode."""
    cv2 = _opencv()
    ext = os.path.splitext(str(path))[1].lower()
    if not cv2 or ext not in _OPENCV_EXTENSIONS:
        return None
    if ext in _JPEG:
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError:
            return None
        if data.size < 4 or data[-2] != 0xFF or data[-1] != 0xD9:
            return None  # truncated (or trailing bytes): Pillow decides
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # no EXIF rotation, as Pillow's open
    else:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # reads and decodes without the GIL
    if image is None or image.dtype != np.uint8:
        return None
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return image[..., ::-1]  # BGR -> RGB
    return None  # alpha: Pillow composites it


def decode_image(path, image_size, channels):
    """One image file as uint8 ``(height, width, channels)``: first frame, converted, resized (bilinear)."""
    from PIL import Image

    height, width = image_size
    pixels = _decode_with_opencv(path)
    if pixels is not None:
        if pixels.shape[:2] == (height, width) and pixels.ndim == (2 if channels == 1 else 3):
            return np.ascontiguousarray(pixels).reshape(height, width, channels)  # nothing to convert
        image = Image.fromarray(np.ascontiguousarray(pixels))
        return _convert_and_resize(image, height, width, channels)
    with Image.open(path) as image:
        image.seek(0)  # GIF, TIFF: the first frame
        if image.mode in ("P", "PA") and "transparency" in image.info or image.mode in ("RGBA", "LA", "PA"):
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (0, 0, 0, 255))  # transparent -> black, as an MNIST blank
            image = Image.alpha_composite(background, image)
        return _convert_and_resize(image, height, width, channels)


def _convert_and_resize(image, height, width, channels):
    from PIL import Image

    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8).reshape(height, width, channels)
