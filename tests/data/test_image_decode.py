"""The OpenCV fast path decodes every file to what Pillow alone gives, and leaves the odd files to Pillow."""

import numpy as np
import pytest
from PIL import Image

from kzoo.data import image_decode
from kzoo.data.image_decode import decode_image

pytest.importorskip("cv2")


def _pillow_only(monkeypatch, path, size, channels):
    monkeypatch.setattr(image_decode, "_cv2", False)
    try:
        return decode_image(path, size, channels)
    finally:
        monkeypatch.setattr(image_decode, "_cv2", None)


def _images(rng):
    rgb = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (30, 40), dtype=np.uint8)
    smooth = np.kron(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), np.ones((5, 5, 1), np.uint8))
    return {
        "rgb.png": Image.fromarray(rgb), "gray.png": Image.fromarray(gray),
        "palette.png": Image.fromarray(rgb).convert("P"), "rgb.bmp": Image.fromarray(rgb),
        "gray.bmp": Image.fromarray(gray), "rgb.webp": Image.fromarray(rgb),
        "photo.jpg": Image.fromarray(smooth), "gray.JPEG": Image.fromarray(gray),
        "rgba.png": Image.fromarray(np.dstack([rgb, gray]), "RGBA"),
    }


@pytest.mark.parametrize("size", [(30, 40), (12, 16), (45, 60)])
@pytest.mark.parametrize("channels", [1, 3])
def test_fast_path_equals_pillow(tmp_path, monkeypatch, size, channels):
    for name, image in _images(np.random.default_rng(0)).items():
        path = tmp_path / name
        image.save(path, **({"lossless": True} if name.endswith(".webp") else {}))
        fast = decode_image(path, size, channels)
        reference = _pillow_only(monkeypatch, path, size, channels)
        assert fast.shape == reference.shape == (*size, channels) and fast.dtype == np.uint8
        np.testing.assert_array_equal(fast, reference, err_msg=name)


def test_opencv_takes_the_common_formats_and_leaves_the_rest(tmp_path):
    images = _images(np.random.default_rng(1))
    for name in ("rgb.png", "gray.png", "photo.jpg", "rgb.bmp"):
        images[name].save(tmp_path / name)
        assert image_decode._decode_with_opencv(tmp_path / name) is not None, name
    images["rgba.png"].save(tmp_path / "rgba.png")
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(tmp_path / "deep.png")
    images["gray.png"].save(tmp_path / "anim.gif")
    for name in ("rgba.png", "deep.png", "anim.gif"):  # alpha, 16-bit, GIF: Pillow's
        assert image_decode._decode_with_opencv(tmp_path / name) is None, name


@pytest.mark.parametrize("name", ["photo.jpg", "rgb.png"])
def test_truncated_file_is_pillows_error(tmp_path, name):
    image = _images(np.random.default_rng(2))[name]
    image.save(tmp_path / name)
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) * 2 // 3])
    assert image_decode._decode_with_opencv(tmp_path / name) is None
    with pytest.raises((OSError, SyntaxError, ValueError)):
        decode_image(tmp_path / name, (30, 40), 3)
