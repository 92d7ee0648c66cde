"""The IDX reader: round trips and clear errors on damaged files."""

import gzip
import struct

import numpy as np
import pytest

from kzoo.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, write_idx
from kzoo.errors import DataError


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_round_trip_images_and_labels(tmp_path, suffix):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    labels = np.array([0, 9, 3, 3, 1], dtype=np.uint8)
    write_idx(tmp_path / f"images{suffix}", images)
    write_idx(tmp_path / f"labels{suffix}", labels)
    np.testing.assert_array_equal(read_idx(tmp_path / f"images{suffix}", "images"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / f"labels{suffix}", "labels"), labels)


def test_header_is_big_endian_mnist_layout(tmp_path):
    path = tmp_path / "t.gz"
    write_idx(path, np.zeros((2, 28, 28), np.uint8))
    raw = gzip.decompress(path.read_bytes())
    assert struct.unpack(">IIII", raw[:16]) == (IMAGES_MAGIC, 2, 28, 28)
    assert len(raw) == 16 + 2 * 28 * 28


def test_wider_types_round_trip(tmp_path):
    values = np.array([[1.5, -2.0], [3.25, 1e6]], dtype=np.float32)
    write_idx(tmp_path / "f.idx", values)
    result = read_idx(tmp_path / "f.idx")
    assert result.dtype == np.float32 and result.dtype.isnative
    np.testing.assert_array_equal(result, values)


def test_truncated_data_is_a_data_error(tmp_path):
    path = tmp_path / "images.gz"
    write_idx(path, np.zeros((3, 4, 4), np.uint8))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-5]))
    with pytest.raises(DataError, match=r"truncated.*\(3, 4, 4\).*48 bytes.*43"):
        read_idx(path)


def test_truncated_gzip_stream_is_a_data_error(tmp_path):
    path = tmp_path / "images.gz"
    write_idx(path, np.arange(2000, dtype=np.uint8).reshape(2, 1000) % 251)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(DataError, match="not a readable gzip file"):
        read_idx(path)


def test_bad_magic_is_a_data_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello, this is not IDX")
    with pytest.raises(DataError, match="not an IDX file: magic number"):
        read_idx(path)


def test_swapped_files_name_the_expected_magic(tmp_path):
    path = tmp_path / "labels.gz"
    write_idx(path, np.zeros(4, np.uint8))
    with pytest.raises(DataError, match=f"should hold images \\(IDX magic {IMAGES_MAGIC}\\).*{LABELS_MAGIC}"):
        read_idx(path, "images")


def test_short_header_and_missing_file(tmp_path):
    (tmp_path / "short").write_bytes(struct.pack(">I", IMAGES_MAGIC) + b"\x00\x00")
    with pytest.raises(DataError, match="truncated.*header"):
        read_idx(tmp_path / "short")
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "absent.gz")
