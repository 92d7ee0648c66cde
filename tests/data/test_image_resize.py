"""kzoo.data.image_resize reproduces Pillow's bilinear resize and its L/RGB conversions bit for bit."""

import numpy as np
import pytest
from PIL import Image

from kzoo.data import image_decode, image_resize
from kzoo.data.image_resize import resize_bilinear, to_channels


def _pillow(image, height, width):
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def test_the_installed_pillow_is_reproduced():
    assert image_resize.available()


@pytest.mark.parametrize("channels", [1, 3])
def test_random_sizes_match_pillow_exactly(channels):
    rng = np.random.default_rng(channels)
    for _ in range(120):
        h, w, height, width = (int(v) for v in rng.integers(1, 160, 4))
        shape = (h, w) if channels == 1 else (h, w, 3)
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        got = resize_bilinear(image.reshape(1, h, w, channels), height, width)[0]
        np.testing.assert_array_equal(got.reshape(_pillow(image, height, width).shape),
                                      _pillow(image, height, width), err_msg=f"{(h, w)} -> {(height, width)}")


def test_a_batch_resizes_each_image_as_pillow_does():
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (5, 28, 28, 3), dtype=np.uint8)
    for height, width in [(32, 32), (14, 9), (100, 7), (28, 60), (3, 28)]:  # both pass orders occur
        got = resize_bilinear(batch, height, width)
        for image, resized in zip(batch, got):
            np.testing.assert_array_equal(resized, _pillow(image, height, width))


def test_conversions_match_pillow():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
    grey = rgb[..., 1]
    np.testing.assert_array_equal(to_channels(rgb, 1)[..., 0], np.asarray(Image.fromarray(rgb).convert("L")))
    np.testing.assert_array_equal(to_channels(grey, 3), np.asarray(Image.fromarray(grey).convert("RGB")))
    np.testing.assert_array_equal(to_channels(grey, 1)[..., 0], grey)
    assert to_channels(rgb, 3) is rgb


def test_decode_images_equals_pillow_for_every_file(tmp_path, monkeypatch):
    """The batched decoder (OpenCV + NumPy resize) against a Pillow-only decode of each file, with files of two
    sizes, both colour modes, a big one (Pillow resizes it) and an unreadable one (reported, left out)."""
    rng = np.random.default_rng(2)
    paths = []
    for i, shape in enumerate([(28, 28), (28, 28, 3), (40, 30), (28, 28), (300, 280, 3), (40, 30, 3)]):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
        paths.append(str(path))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    paths.insert(2, str(broken))
    errors = []
    for channels in (1, 3):
        got = image_decode.decode_images(paths, (32, 24), channels, lambda p, e: errors.append(p))
        assert got[2] is None and errors[-1] == str(broken)
        monkeypatch.setattr(image_decode, "_cv2", False)  # Pillow alone
        for path, image in zip(paths, got):
            if path != str(broken):
                np.testing.assert_array_equal(image, image_decode.decode_image(path, (32, 24), channels))
        monkeypatch.setattr(image_decode, "_cv2", None)


def test_without_a_matching_pillow_order_pillow_resizes(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    image = np.random.default_rng(3).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(image).save(path)
    monkeypatch.setattr(image_resize, "_ORDER", None)  # as if a future Pillow changed its arithmetic
    assert not image_resize.available()
    called = []
    monkeypatch.setattr(image_resize, "resize_bilinear", lambda *a: called.append(a))
    out = image_decode.decode_images([str(path)], (32, 32), 1, lambda p, e: None)[0]
    np.testing.assert_array_equal(out[..., 0], _pillow(image, 32, 32))
    assert not called
