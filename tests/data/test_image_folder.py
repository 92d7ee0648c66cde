"""Image folders: both layouts, the seeded stratified split, formats, channels, sizes, and every bad-data case."""

import os

import numpy as np
import pytest
from PIL import Image

from kzoo.data.image_folder import (ImageDataWarning, expand_image_paths, open_image_folder, parse_image_size,
                                    read_file_lists)
from kzoo.errors import DataError


def _counts(files, num_classes):
    return np.bincount(files.labels, minlength=num_classes)


def test_class_layout_is_split_80_10_10_per_class(digits_folder):
    folder = open_image_folder(digits_folder)
    assert folder.layout == "classes" and folder.class_names == [f"digit_{i}" for i in range(10)]
    total = sum(len(folder.split(s)) for s in ("train", "val", "test"))
    assert total == 300 and folder.input_shape == (28, 28, 1)
    for split, fraction in (("val", 0.1), ("test", 0.1), ("train", 0.8)):
        counts, whole = _counts(folder.split(split), 10), np.array([
            len(os.listdir(digits_folder / f"digit_{i}")) for i in range(10)])
        assert np.all(np.abs(counts - whole * fraction) <= 1), (split, counts, whole)  # stratified
    # every file's label is its folder, and no file is in two splits
    seen = set()
    for split in ("train", "val", "test"):
        files = folder.split(split)
        for path, label in zip(files.paths, files.labels):
            assert os.path.basename(os.path.dirname(path)) == folder.class_names[label]
            assert path not in seen
            seen.add(path)


def test_split_is_seeded_and_options_apply(digits_folder):
    a, b = open_image_folder(digits_folder, seed=3), open_image_folder(digits_folder, seed=3)
    c = open_image_folder(digits_folder, seed=4)
    assert a.test.paths == b.test.paths and a.train.paths == b.train.paths
    assert set(a.test.paths) != set(c.test.paths)
    d = open_image_folder(digits_folder, val_split=0.2, test_split=0.3)
    assert abs(len(d.val) - 60) <= 10 and abs(len(d.test) - 90) <= 10
    none = open_image_folder(digits_folder, val_split=0, test_split=0)
    assert len(none.train) == 300 and len(none.val) == 0 and len(none.test) == 0


def test_split_layout_used_as_given_and_val_carved_from_train_only(tmp_path, write_digits):
    root = tmp_path / "split"
    write_digits(root, 200, split="train")
    write_digits(root, 40, start=200, split="test")
    folder = open_image_folder(root)
    assert folder.layout == "splits" and len(folder.test) == 40
    assert all(f"{os.sep}test{os.sep}" in p for p in folder.test.paths)
    assert all(f"{os.sep}train{os.sep}" in p for p in folder.train.paths + folder.val.paths)
    assert len(folder.train) + len(folder.val) == 200 and abs(len(folder.val) - 20) <= 10
    write_digits(root, 30, start=300, split="valid")  # the alias of val/
    with_val = open_image_folder(root)
    assert len(with_val.val) == 30 and len(with_val.train) == 200
    assert all(f"{os.sep}valid{os.sep}" in p for p in with_val.val.paths)


def test_split_layout_without_test_carves_test_from_train(tmp_path, write_digits):
    root = tmp_path / "split"
    write_digits(root, 200, split="train")
    write_digits(root, 30, start=200, split="validation")
    folder = open_image_folder(root, test_split=0.2)
    assert len(folder.val) == 30 and abs(len(folder.test) - 40) <= 10
    assert len(folder.train) + len(folder.test) == 200


def test_hidden_and_non_image_files_are_ignored_extensions_any_case(tmp_path, write_digits):
    root = tmp_path / "d"
    write_digits(root, 60)
    (root / "README.txt").write_text("about these images")
    (root / "digit_1" / ".DS_Store").write_bytes(b"\0\1")
    (root / "digit_1" / "notes.txt").write_text("x")
    (root / ".hidden_class").mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(root / ".hidden_class" / "a.png")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(root / "digit_1" / "UPPER.PNG")
    folder = open_image_folder(root, val_split=0, test_split=0)
    assert len(folder.class_names) == 10 and len(folder.train) == 61
    assert any(p.endswith("UPPER.PNG") for p in folder.train.paths)


FORMATS = {".png": "PNG", ".jpg": "JPEG", ".JPEG": "JPEG", ".bmp": "BMP", ".gif": "GIF", ".tif": "TIFF",
           ".tiff": "TIFF"}  # WebP stores grey images as RGB: it joins in the colour part below


def test_every_pillow_format_and_channels_rule(tmp_path):
    from kzoo.data.image_folder import decode_image

    rng = np.random.default_rng(0)
    root = tmp_path / "formats"
    gray = rng.integers(0, 256, (20, 24), dtype=np.uint8)
    for k, (ext, fmt) in enumerate(FORMATS.items()):
        for cls in ("a", "b"):
            (root / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(gray).save(root / cls / f"img{k}{ext}", format=fmt)
    folder = open_image_folder(root, val_split=0, test_split=0)
    assert len(folder.train) == 2 * len(FORMATS) and folder.channels == 1 and folder.image_size == (20, 24)
    for path in folder.train.paths:  # lossless formats decode to the pixels written
        decoded = decode_image(path, (20, 24), 1)
        if os.path.splitext(path)[1].lower() in (".png", ".bmp", ".gif", ".tif", ".tiff"):
            np.testing.assert_array_equal(decoded[..., 0], gray)
        else:
            assert np.abs(decoded[..., 0].astype(int) - gray).mean() < 40
    # one colour image (RGBA, palette) anywhere makes it 3 channels; --channels overrides
    Image.fromarray(rng.integers(0, 256, (20, 24, 4), dtype=np.uint8), "RGBA").save(root / "a" / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(root / "b" / "colour.webp")
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).convert("P").save(root / "b" / "pal.gif")
    colour = open_image_folder(root, val_split=0, test_split=0)
    assert colour.channels == 3 and len(colour.train) == 2 * len(FORMATS) + 3
    assert open_image_folder(root, channels=1).channels == 1


def test_decode_converts_like_pillow(tmp_path):
    from kzoo.data.image_folder import decode_image

    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    reference = np.asarray(Image.fromarray(rgb).resize((16, 12), Image.BILINEAR))
    np.testing.assert_array_equal(decode_image(tmp_path / "c.png", (12, 16), 3), reference)
    luma = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(decode_image(tmp_path / "c.png", (30, 40), 1)[..., 0], luma)
    frames = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (10, 200)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert decode_image(tmp_path / "anim.gif", (8, 8), 1).max() == 10  # the first frame


@pytest.mark.parametrize("value, expected", [(28, (28, 28)), ("64", (64, 64)), ("32x48", (32, 48)),
                                             ("32X48", (32, 48)), ((10, 12), (10, 12)), (None, None)])
def test_parse_image_size(value, expected):
    assert parse_image_size(value) == expected


@pytest.mark.parametrize("value", ["0", "x", "3x4x5", -2, "12x"])
def test_bad_image_size(value):
    with pytest.raises(DataError, match="image_size"):
        parse_image_size(value)


def test_image_size_default_is_the_most_common_size(tmp_path):
    for cls, sizes in (("a", [(10, 12), (10, 12)]), ("b", [(10, 12), (30, 30)])):
        (tmp_path / cls).mkdir()
        for i, (h, w) in enumerate(sizes):
            Image.fromarray(np.zeros((h, w), np.uint8)).save(tmp_path / cls / f"{i}.png")
    assert open_image_folder(tmp_path).image_size == (10, 12)
    assert open_image_folder(tmp_path, image_size="5x7").image_size == (5, 7)


# --- bad data ---------------------------------------------------------------------------------------------------


def test_corrupt_image_is_skipped_with_a_warning_naming_it(digits_folder):
    bad = digits_folder / "digit_3" / "zz_corrupt.png"
    bad.write_bytes(b"not a png at all")
    with pytest.warns(ImageDataWarning, match="zz_corrupt.png"):
        folder = open_image_folder(digits_folder, val_split=0, test_split=0)
    assert folder.skipped == [str(bad)] and str(bad) not in folder.train.paths and len(folder.train) == 300
    with pytest.raises(DataError, match="zz_corrupt.png"):
        open_image_folder(digits_folder, strict=True)


@pytest.mark.parametrize("case, message", [
    ("missing", "No such folder"),
    ("empty", "no class subfolders"),
    ("loose", "images but no class subfolders"),
    ("single", "single class"),
    ("empty_class", "holds no images"),
    ("file", "is a file"),
])
def test_unusable_folders_say_why(tmp_path, write_digits, case, message):
    root = tmp_path / "data"
    if case == "empty":
        root.mkdir()
    elif case == "loose":
        root.mkdir()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "a.png")
    elif case == "single":
        write_digits(root, 50, classes=[1])
    elif case == "empty_class":
        write_digits(root, 50)
        (root / "digit_x").mkdir()
        (root / "digit_x" / "readme.txt").write_text("nothing here")
    elif case == "file":
        root.write_text("x")
    with pytest.raises(DataError, match=message):
        open_image_folder(root)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions, not root")
def test_unreadable_folder(tmp_path, write_digits):
    root = tmp_path / "locked"
    write_digits(root, 30)
    os.chmod(root, 0)
    try:
        with pytest.raises(DataError, match="cannot be read"):
            open_image_folder(root)
    finally:
        os.chmod(root, 0o755)


def test_file_lists_round_trip(digits_folder):
    folder = open_image_folder(digits_folder)
    again = read_file_lists(folder.file_lists())
    assert again.test.paths == folder.test.paths and (again.test.labels == folder.test.labels).all()
    assert again.class_names == folder.class_names and again.input_shape == folder.input_shape


def test_expand_image_paths_files_folders_globs(digits_folder):
    one = str(next((digits_folder / "digit_0").iterdir()))
    assert expand_image_paths([one]) == [one]
    folder = expand_image_paths([digits_folder / "digit_2"])
    assert folder == sorted(str(p) for p in (digits_folder / "digit_2").iterdir())
    pattern = expand_image_paths([str(digits_folder / "digit_[12]" / "*.png")])
    assert len(pattern) == len(os.listdir(digits_folder / "digit_1")) + len(folder)
    with pytest.raises(DataError, match="No images match"):
        expand_image_paths([str(digits_folder / "*.jpg")])
    with pytest.raises(DataError, match="No such image file"):
        expand_image_paths([str(digits_folder / "nope.png")])
