"""A zip bomb made on the fly for the tests (never stored): one member inflating to gigabytes."""

import struct
import zlib


def write_zip_bomb(path, name="config.json", inflated=1536 * 2**20, fill=b"a"):
    """A real zip archive whose one member inflates to ``inflated`` bytes of ``fill`` (valid CRC).

    The deflate stream is one compressed megabyte, byte-aligned by a full flush, repeated: 1.5 GiB of one
    character packs into 1.6 MB, written in seconds without ever holding more than a megabyte.
    """
    chunk = fill * 2**20
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = squeeze.compress(chunk) + squeeze.flush(zlib.Z_FULL_FLUSH)
    end = squeeze.flush()
    count = inflated // len(chunk)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    packed, encoded = len(block) * count + len(end), name.encode()
    with open(path, "wb") as out:
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, packed, inflated,
                              len(encoded), 0) + encoded)
        for _ in range(count):
            out.write(block)
        out.write(end)
        directory_at = out.tell()
        entry = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, packed, inflated,
                            len(encoded), 0, 0, 0, 0, 0, 0) + encoded
        out.write(entry)
        out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(entry), directory_at, 0))
    return path
