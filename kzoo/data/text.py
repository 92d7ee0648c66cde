"""Text sources: The Time Machine (shipped in the package) or any UTF-8 ``.txt`` file.

The builder takes ``data_dir=None`` and returns a text :class:`kzoo.data.Dataset`; ``embedded/README.md`` says
where the shipped text comes from and ``scripts/make_embedded_data.py`` how it was made.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

from kzoo.data.dataset import Dataset
from kzoo.errors import DataError

MODEL_CARD = {"task": "text", "input_shape": None, "num_classes": None, "class_names": None}

SPECS = {
    "timemachine": {
        "description": "H. G. Wells, The Time Machine (1895): about 180,000 characters of English text, "
                       "shipped with kzoo",
        "source": "Project Gutenberg eBook #35, https://www.gutenberg.org/ebooks/35 (header and licence removed)",
        "license": "public domain in the USA",
        "data_dir": "a UTF-8 .txt file, or a folder with timemachine.txt; read instead of the embedded text",
    },
}

# kzoo holds a text whole, several times over (characters, token ids, windows): a larger file is refused
MAX_TEXT_BYTES = 256 * 2**20

_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF .*$", re.MULTILINE)
_GUTENBERG_END = re.compile(r"^\*\*\* ?END OF .*$", re.MULTILINE)


def timemachine(data_dir: str | os.PathLike | None = None) -> Dataset:
    """The text of The Time Machine, without Project Gutenberg's header and licence.

    Args:
        data_dir: a UTF-8 text file (or a folder holding ``timemachine.txt``) to read instead of the embedded
            copy; a Project Gutenberg header and footer, if present, are removed.

    Raises:
        DataError: the file is missing, empty, binary or not UTF-8.
    """
    if data_dir is None:
        source = "the embedded timemachine.txt"
        raw = (resources.files("kzoo.data") / "embedded" / "timemachine.txt").read_bytes()
    else:
        path = Path(data_dir)
        if path.is_dir():
            path = path / "timemachine.txt"
        if not path.is_file():
            raise DataError(f"Text file {path} does not exist. Pass a UTF-8 .txt file, or a folder that holds "
                            "timemachine.txt, as data_dir.")
        source, raw = str(path), read_bounded(path)
    if b"\x00" in raw:
        raise DataError(f"{source} is a binary file, not text (it contains NUL bytes). Pass a UTF-8 .txt file.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{source} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}). "
                        "Convert it to UTF-8, e.g. with `iconv -t UTF-8`.") from None
    text = strip_gutenberg(text.replace("\r\n", "\n"))
    if not text:
        raise DataError(f"{source} holds no text. Pass a non-empty UTF-8 .txt file.")
    return Dataset("timemachine", task="text", text=text)


def read_bounded(path: Path) -> bytes:
    """The bytes of a text file of at most :data:`MAX_TEXT_BYTES`.

    Raises:
        DataError: the file is larger.
    """
    check_text_size(path)
    with path.open("rb") as handle:  # a device or a growing file may read longer than its size said
        raw = handle.read(MAX_TEXT_BYTES + 1)
    check_text_size(path, len(raw))
    return raw


def check_text_size(path: Path, size: int | None = None) -> None:
    """Refuse a text file, or a folder of them, of more than :data:`MAX_TEXT_BYTES`: ``size`` bytes read so far,
    by default the file's size on disk."""
    if (path.stat().st_size if size is None else size) > MAX_TEXT_BYTES:
        raise DataError(f"{path} holds more than {MAX_TEXT_BYTES // 2**20:,} MB of text, more than kzoo reads into "
                        f"memory; train on a sample of it (e.g. `shuf -n 1000000 FILE`).")


def strip_gutenberg(text: str) -> str:
    """The text between Project Gutenberg's ``*** START OF`` and ``*** END OF`` lines, stripped of blank edges.

    Text without both markers is only stripped of leading and trailing whitespace.
    """
    start, end = _GUTENBERG_START.search(text), _GUTENBERG_END.search(text)
    if start and end and start.end() < end.start():
        text = text[start.end():end.start()]
    return text.strip()
