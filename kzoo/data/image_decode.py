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
The conversion and the resize are Pillow's in both cases, on the decoded array: for small images (where
Pillow's per-call Python costs more than the arithmetic) computed by :mod:`kzoo.data.image_resize`, which
reproduces Pillow's integers without calling it, a whole batch of same-sized images at once
(:func:`decode_images`); for large ones by Pillow itself.
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


# resize in NumPy (dense matrix products) while this costs less than Pillow's per-image call; beyond, Pillow's
# sparse C loops win (a 256x256 to 224x224 resize: about 28M multiply-adds dense)
_DENSE_LIMIT = 2_000_000


def _numpy_resizes(shape, image_size):
    from kzoo.data import image_resize

    (h, w, c), (height, width) = shape, image_size
    return (height * h * w + height * w * width) * c <= _DENSE_LIMIT and image_resize.available()


def decode_pixels(path, channels):
    """The file's pixels at their own size as uint8 ``(H, W, channels)``, converted as Pillow converts, or
    ``None`` where OpenCV does not decode this file (then :func:`decode_image` has Pillow do it all)."""
    from kzoo.data.image_resize import to_channels

    pixels = _decode_with_opencv(path)
    return None if pixels is None else to_channels(pixels, channels)


def _decode_or_defer(path, image_size, channels):
    """``(image, None)`` with the file's final uint8 image, or ``(None, pixels)`` when its pixels are left for
    one batched NumPy resize (:func:`kzoo.data.image_resize.resize_bilinear`)."""
    from PIL import Image

    height, width = image_size
    pixels = decode_pixels(path, channels)
    if pixels is not None:
        if pixels.shape[:2] == (height, width):
            return np.ascontiguousarray(pixels), None  # nothing to resize
        if _numpy_resizes(pixels.shape, image_size):
            return None, pixels
        return _convert_and_resize(_pillow_image(pixels), height, width, channels), None
    with Image.open(path) as image:
        image.seek(0)  # GIF, TIFF: the first frame
        if image.mode in ("P", "PA") and "transparency" in image.info or image.mode in ("RGBA", "LA", "PA"):
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (0, 0, 0, 255))  # transparent -> black, as an MNIST blank
            image = Image.alpha_composite(background, image)
        return _convert_and_resize(image, height, width, channels), None


def decode_images(paths, image_size, channels, on_error):
    """Decoded uint8 ``(height, width, channels)`` images of ``paths`` (``None`` for a file that failed:
    ``on_error(path, exc)`` is called for it), same-sized small images resized together in one NumPy call."""
    from kzoo.data.image_resize import resize_bilinear

    images = [None] * len(paths)
    groups = {}  # source shape -> positions whose pixels wait for one batched resize
    deferred = {}
    for i, path in enumerate(paths):
        try:
            images[i], pixels = _decode_or_defer(path, image_size, channels)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:  # Pillow's truncated/corrupt-file errors
            on_error(path, exc)
            continue
        if pixels is not None:
            groups.setdefault(pixels.shape, []).append(i)
            deferred[i] = pixels
    for positions in groups.values():
        resized = resize_bilinear(np.stack([deferred[i] for i in positions]), *image_size)
        for i, image in zip(positions, resized):
            images[i] = image
    return images


def decode_image(path, image_size, channels):
    """One image file as uint8 ``(height, width, channels)``: first frame, converted, resized (bilinear)."""
    from kzoo.data.image_resize import resize_bilinear

    image, pixels = _decode_or_defer(path, image_size, channels)
    return image if pixels is None else resize_bilinear(pixels[None], *image_size)[0]


def _pillow_image(pixels):
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels))


def _convert_and_resize(image, height, width, channels):
    from PIL import Image

    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8).reshape(height, width, channels)
