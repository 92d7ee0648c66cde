"""Read and write IDX files, the format of the MNIST and Fashion-MNIST distributions.

An IDX file is a big-endian header followed by raw values: two zero bytes, one byte for the value type
(``0x08`` = uint8, ...), one byte for the number of dimensions, then one uint32 per dimension. The MNIST
image files thus start with the magic number 2051 (``0x00000803``: uint8, 3 dimensions) and the label files
with 2049 (``0x00000801``: uint8, 1 dimension). Files may be gzip-compressed; compression is detected from
the content, not from the file name.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from kzoo.errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

# IDX type byte -> big-endian numpy dtype.
_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype: code for code, dtype in _DTYPES.items()}
_KIND_MAGIC = {"images": IMAGES_MAGIC, "labels": LABELS_MAGIC}
_GZIP_SIGNATURE = b"\x1f\x8b"


def read_idx(path: str | os.PathLike, kind: str | None = None) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not, into a numpy array.

    Args:
        path: the ``.gz`` or uncompressed IDX file.
        kind: ``"images"`` to require magic 2051, ``"labels"`` to require magic 2049, ``None`` to accept any
            valid IDX header.

    Returns:
        The values in native byte order, shaped as the header says (``(count, rows, cols)`` for images).

    Raises:
        DataError: the file is missing, is not valid gzip, has an unexpected or invalid magic number, or
            holds more or fewer bytes than its header announces.
    """
    if kind is not None and kind not in _KIND_MAGIC:
        raise ValueError(f"kind must be 'images', 'labels' or None. Received: kind={kind!r}.")
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"IDX file {path} is truncated: {len(raw)} bytes, shorter than the 4-byte magic number.")
    zeros, type_code, ndim = struct.unpack(">HBB", raw[:4])
    magic = struct.unpack(">I", raw[:4])[0]
    if zeros != 0 or type_code not in _DTYPES or ndim == 0:
        raise DataError(
            f"{path} is not an IDX file: magic number {magic} (0x{magic:08x}) is invalid. Expected e.g. "
            f"{IMAGES_MAGIC} for images or {LABELS_MAGIC} for labels; the file may be corrupt or of another format."
        )
    if kind is not None and magic != _KIND_MAGIC[kind]:
        raise DataError(
            f"{path} should hold {kind} (IDX magic {_KIND_MAGIC[kind]}) but its magic number is {magic}. "
            "Check that the image and label files are not swapped."
        )
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"IDX file {path} is truncated: its {ndim}-dimensional header needs {header_size} bytes, "
                        f"the file has {len(raw)}.")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    dtype = _DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header_size
    if found != expected:
        state = "truncated" if found < expected else "longer than its header says"
        raise DataError(
            f"IDX file {path} is {state}: the header announces shape {shape} ({expected} bytes of data), "
            f"the file holds {found} bytes. Download or copy the file again."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write an array as an IDX file.

    Args:
        path: the file to write.
        array: values of dtype uint8, int8, int16, int32, float32 or float64, with at least one dimension.
        compress: gzip the file; ``None`` compresses when ``path`` ends with ``.gz``.

    Raises:
        ValueError: the array's dtype or shape cannot be stored in IDX.
    """
    array = np.asarray(array)
    big_endian = array.dtype.newbyteorder(">")
    if big_endian not in _CODES:
        raise ValueError(f"IDX cannot store dtype {array.dtype}. Use one of: uint8, int8, int16, int32, "
                         "float32, float64.")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions. Received: shape {array.shape}.")
    header = struct.pack(f">HBB{array.ndim}I", 0, _CODES[big_endian], array.ndim, *array.shape)
    payload = header + array.astype(big_endian, copy=False).tobytes()
    if compress is None:
        compress = os.fspath(path).endswith(".gz")
    opener = gzip.open if compress else open
    with opener(path, "wb") as handle:
        handle.write(payload)


def _read_bytes(path):
    """The file's bytes, decompressed when they start with the gzip signature."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise DataError(f"IDX file {path} does not exist.") from None
    except IsADirectoryError:
        raise DataError(f"Expected an IDX file, got the folder {path}.") from None
    if not raw.startswith(_GZIP_SIGNATURE):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a readable gzip file ({exc}); it is probably truncated or corrupt. "
                        "Download or copy it again.") from None
