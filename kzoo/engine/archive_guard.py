"""Bounds on a model file, checked before Keras reads it.

A ``.keras`` file is a zip archive that Keras inflates into memory (``config.json`` whole, the weights file
dataset by dataset). A 1.5 MB archive whose ``config.json`` inflates to 1.5 GB of one repeated character
made ``kzoo evaluate`` take 5 GB of memory and half a minute before it failed. The archive's directory is
read here first (no member is inflated) and refused when its members are too many, too large, or compressed
far beyond what real model files are: Keras stores its members uncompressed, and even deflated weights shrink
by a few times at most. Python's ``zipfile`` never inflates a member beyond the size the directory declares
(it stops there and the CRC check fails), so the declared sizes are binding.

A weights file (HDF5, standalone or the archive's ``model.weights.h5``) is checked the same way: the bytes its
datasets declare, read from their headers, must be in proportion to the file.
"""

import io
import os
import struct
import zipfile

from kzoo.errors import CheckpointError

MAX_MEMBERS = 10_000
MAX_JSON_BYTES = 64 * 2**20  # config.json and metadata.json: real ones are kB (a DenseNet-201 config: ~1 MB)
MAX_TOTAL_BYTES = 64 * 2**30
MAX_RATIO = 100  # uncompressed / compressed, for members over RATIO_FLOOR_BYTES
RATIO_FLOOR_BYTES = 2**20


def _mb(n):
    return f"{n / 2**20:,.1f} MiB"


def check_keras_archive(path):
    """Raise :class:`CheckpointError` unless the zip archive ``path`` is within the bounds above.

    Returns:
        The archive's ``ZipInfo`` members, for callers that go on reading it.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"{path} is not a valid .keras file (truncated or corrupt zip archive: {exc}).") from None
    refuse = lambda why: CheckpointError(f"Refusing to load {path}: {why}; it is not a model file kzoo or Keras "  # noqa: E731
                                         f"wrote (a damaged file or a decompression bomb).")
    if len(members) > MAX_MEMBERS:
        raise refuse(f"it holds {len(members):,} files (at most {MAX_MEMBERS:,})")
    total = 0
    for member in members:
        size, packed = member.file_size, member.compress_size
        total += size
        if member.filename.endswith(".json") and size > MAX_JSON_BYTES:
            raise refuse(f"{member.filename} inflates to {_mb(size)} (at most {_mb(MAX_JSON_BYTES)})")
        if size > RATIO_FLOOR_BYTES and size > MAX_RATIO * max(packed, 1):
            raise refuse(f"{member.filename} inflates {size / max(packed, 1):,.0f} times ({_mb(packed)} to "
                         f"{_mb(size)}; at most {MAX_RATIO} times)")
    if total > MAX_TOTAL_BYTES:
        raise refuse(f"its files inflate to {_mb(total)} in all (at most {_mb(MAX_TOTAL_BYTES)})")
    return members


def declared_dataset_bytes(h5file):
    """Bytes the datasets of an open ``h5py.File`` declare (their headers only: no data is read)."""
    import h5py

    total = 0

    def visit(_, item):
        nonlocal total
        if isinstance(item, h5py.Dataset):
            total += item.size * item.dtype.itemsize

    h5file.visititems(visit)
    return total


def check_weights_file(source, size, name):
    """Raise :class:`CheckpointError` unless the HDF5 weights ``source`` declares data in proportion to ``size``.

    Args:
        source: a path or a seekable binary file object (an archive member).
        size: the file's size in bytes.
        name: how the message names the file.
    """
    import h5py

    try:
        with h5py.File(source, "r") as h5file:
            declared = declared_dataset_bytes(h5file)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{name} is not a valid weights file (truncated or corrupt HDF5: {exc}).") from None
    if declared > RATIO_FLOOR_BYTES and declared > MAX_RATIO * max(size, 1):
        raise CheckpointError(f"Refusing to load {name}: its datasets declare {_mb(declared)} in a {_mb(size)} file "
                              f"(at most {MAX_RATIO} times); a damaged file or a decompression bomb.")


def check_keras_file(path):
    """Check a ``.keras`` archive and the weights file inside it before Keras opens it."""
    members = check_keras_archive(path)
    weights = [m for m in members if m.filename == "model.weights.h5"]
    if not weights:
        return
    name = f"{path} (model.weights.h5)"
    if weights[0].compress_type != zipfile.ZIP_STORED:
        with zipfile.ZipFile(path) as archive, archive.open(weights[0]) as member:
            check_weights_file(member, weights[0].file_size, name)
        return
    with open(path, "rb") as handle:
        check_weights_file(StoredMember(handle, weights[0]), weights[0].file_size, name)


class StoredMember(io.RawIOBase):
    """A stored (uncompressed) zip member read in place from the open archive ``handle``, with O(1) seeks.

    Walking the HDF5 headers seeks back and forth; ``zipfile``'s member file (Python < 3.12) answers every
    backward seek by reading the member again from its start, CRC included: 47 s of the 73 s a ResNet-152
    checkpoint (230 MB) took to load on 2 cores. Keras writes its members stored, so this is the usual path.
    """

    def __init__(self, handle, info):
        super().__init__()
        handle.seek(info.header_offset)
        header = handle.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise CheckpointError(f"{handle.name} is not a valid .keras file (corrupt zip member header).")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        self._handle, self._size, self._position = handle, info.file_size, 0
        self._start = info.header_offset + 30 + name_length + extra_length

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._position

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer):
        count = max(0, min(len(buffer), self._size - self._position))
        if not count:
            return 0
        self._handle.seek(self._start + self._position)
        count = self._handle.readinto(memoryview(buffer)[:count])
        self._position += count
        return count


def check_weights_path(path):
    """Check a standalone ``.weights.h5`` file before Keras opens it."""
    check_weights_file(path, os.path.getsize(path), path)
