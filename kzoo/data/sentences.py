"""Text datasets: sentence pairs for translation (``fra_eng``) and labelled sentences (``sentiment``).

Both ship inside the package (``embedded/``; see the README there and ``scripts/make_text_data.py``) with a
fixed held-out split, and both read a user's own files through ``data_dir`` (``kzoo train --data FILE`` of a
translator or a text classifier comes here):

* ``fra_eng``: a ``source<TAB>target`` file (``.tsv`` or ``.txt``, UTF-8; further columns are ignored);
* ``sentiment``: a ``text<TAB>label`` file, or a folder of class subfolders holding ``.txt`` files (the layout
  of ``keras.utils.text_dataset_from_directory``; class names are the sorted subfolder names).

A translation dataset holds object arrays of strings: ``x_*`` the source sentences, ``y_*`` the targets. A
text-classification dataset holds the texts in ``x_*`` and integer labels in ``y_*``. The held-out split of a
user's file is fixed too (:func:`held_out`): every pair of a held-out source sentence goes to the test split,
so no test sentence is ever seen in training, even with another translation. A user's file is read line by
line within bounds (:data:`MAX_LINE_BYTES`, :data:`MAX_LINES`, :data:`kzoo.data.text.MAX_TEXT_BYTES`), and a
line that does not fit is named with the columns it lacks.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from importlib import resources
from pathlib import Path

import numpy as np

from kzoo.data import Dataset
from kzoo.data.text import check_text_size
from kzoo.errors import DataError

MODEL_CARD = {"task": "translation"}

SPECS = {
    "fra_eng": {
        "description": "English-French sentence pairs from Tatoeba (d2l's translation data), lower-cased, a "
                       "space before punctuation; 10% of the English sentences held out",
        "task": "translation",
        "train_examples": 68424,
        "test_examples": 7613,
        "source": "Tatoeba project (tatoeba.org), pair list of manythings.org/anki; provenance: "
                  "kzoo/data/embedded/README.md",
        "license": "CC-BY 2.0 FR",
        "data_dir": "a source<TAB>target file (.tsv or .txt); 10% of its source sentences are held out",
    },
    "sentiment": {
        "description": "Sentiment Labelled Sentences: 3,000 imdb, amazon and yelp sentences, negative or "
                       "positive; 600 held out",
        "task": "text_classification",
        "num_classes": 2,
        "class_names": ["negative", "positive"],
        "train_examples": 2400,
        "test_examples": 600,
        "source": "D. Kotzias, M. Denil, N. de Freitas, P. Smyth, From Group to Individual Labels using Deep "
                  "Features, KDD 2015; UCI Machine Learning Repository",
        "license": "CC BY 4.0",
        "data_dir": "a text<TAB>label file, or a folder of class subfolders holding .txt files; 20% held out",
    },
}

HELD_OUT = {"fra_eng": 0.1, "sentiment": 0.2}
# a sentence, or a document of a class folder, longer than MAX_LINE_BYTES is refused, and so are more than
# MAX_LINES of them: a list of short strings takes some 200 bytes a line
MAX_LINE_BYTES = 2**20
MAX_LINES = 2_000_000
SPLIT_SEED = 0
_PUNCTUATION = set(",.!?")


def preprocess_nmt(text: str) -> str:
    """d2l's ``preprocess_nmt``: non-breaking spaces become spaces, lower case, a space before ``, . ! ?``."""
    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    return "".join(" " + char if i > 0 and char in _PUNCTUATION and text[i - 1] != " " else char
                   for i, char in enumerate(text))


def held_out(groups, fraction: float, seed: int = SPLIT_SEED) -> np.ndarray:
    """A boolean test mask: ``fraction`` of the distinct ``groups`` (all their rows) by a seeded permutation.

    Grouping by source sentence keeps every translation of a test sentence out of training.
    """
    groups = np.asarray(groups, dtype=object)
    distinct = sorted(set(groups.tolist()))
    order = np.random.default_rng(seed).permutation(len(distinct))
    count = max(1, int(round(len(distinct) * fraction))) if len(distinct) > 1 else 0
    test_groups = {distinct[i] for i in order[:count]}
    return np.fromiter((g in test_groups for g in groups), dtype=bool, count=len(groups))


def fra_eng(data_dir: str | os.PathLike | None = None) -> Dataset:
    """English-French pairs: the embedded Tatoeba set, or a ``source<TAB>target`` file (preprocessed alike)."""
    if data_dir is None:
        rows = _read_embedded_tsv("fra_eng.tsv.gz")
        source = np.array([r[0] for r in rows], dtype=object)
        target = np.array([r[1] for r in rows], dtype=object)
        test = np.array([r[2] == "test" for r in rows])
    else:
        rows = _read_tsv(Path(data_dir), what="source<TAB>target")
        source = np.array([preprocess_nmt(r[0]) for r in rows], dtype=object)
        target = np.array([preprocess_nmt(r[1]) for r in rows], dtype=object)
        test = held_out(source, HELD_OUT["fra_eng"])
    return Dataset("fra_eng", x_train=source[~test], y_train=target[~test], x_test=source[test],
                   y_test=target[test], task="translation")


def sentiment(data_dir: str | os.PathLike | None = None) -> Dataset:
    """Labelled sentences: the embedded UCI set, a ``text<TAB>label`` file or a folder of class subfolders."""
    class_names = SPECS["sentiment"]["class_names"]
    if data_dir is None:
        rows = _read_embedded_tsv("sentiment.tsv.gz")
        texts = np.array([r[0] for r in rows], dtype=object)
        labels = np.array([int(r[1]) for r in rows], dtype="int64")
        test = np.array([r[3] == "test" for r in rows])
    else:
        path = Path(data_dir)
        if path.is_dir():
            texts, labels, class_names = _read_class_folders(path)
        else:
            rows = _read_tsv(path, what="text<TAB>label")
            texts = np.array([r[0].strip() for r in rows], dtype=object)
            labels, class_names = _labels(path, [r[1].strip() for r in rows])
        test = held_out(np.arange(len(texts)), HELD_OUT["sentiment"])
    return Dataset("sentiment", x_train=texts[~test], y_train=labels[~test], x_test=texts[test],
                   y_test=labels[test], class_names=list(class_names), task="text_classification")


def holds_texts(path: str | os.PathLike) -> bool:
    """Whether a path given to a sequence classifier names labelled texts (a file, or a folder whose class
    subfolders hold ``.txt`` files and no image) rather than a folder of images, which it reads row by row."""
    from kzoo.data.image_folder import IMAGE_EXTENSIONS

    path = Path(os.path.expanduser(os.fspath(path)))
    if not path.is_dir():
        return True
    suffixes = {os.path.splitext(entry.name)[1].lower() for sub in _class_folders(path)
                for entry in os.scandir(sub) if not entry.name.startswith(".")}
    return ".txt" in suffixes and not suffixes & IMAGE_EXTENSIONS


def _read_embedded_tsv(name):
    with resources.files("kzoo.data").joinpath("embedded", name).open("rb") as handle:
        text = gzip.decompress(handle.read()).decode("utf-8")
    return list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))


def _read_tsv(path, *, what):
    """The rows of a tab-separated file with the columns ``what`` names (``"text<TAB>label"``), further columns
    ignored, blank lines skipped; bounded by :data:`MAX_LINE_BYTES`, :data:`MAX_LINES` and
    :func:`~kzoo.data.text.check_text_size`."""
    columns = what.split("<TAB>")
    if not path.exists():
        raise DataError(f"No such file: {path}. Expected a UTF-8 {what} file.")
    if path.is_dir():
        raise DataError(f"{path} is a folder; expected a UTF-8 {what} file.")
    check_text_size(path)
    rows, total = [], 0
    with path.open("rb") as handle:
        for number, raw in enumerate(iter(lambda: handle.readline(MAX_LINE_BYTES + 1), b""), start=1):
            total += len(raw)
            check_text_size(path, total)
            if len(raw) > MAX_LINE_BYTES:
                raise DataError(f"{path} line {number} is longer than {MAX_LINE_BYTES:,} bytes; expected one "
                                f"{what} row per line.")
            if b"\x00" in raw:
                raise DataError(f"{path} line {number} holds NUL bytes: a binary file, not a UTF-8 {what} file.")
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path} line {number} is not UTF-8 text (byte 0x{raw[exc.start]:02x}). Convert it "
                                f"to UTF-8, e.g. with `iconv -t UTF-8`.") from None
            if number == 1:
                line = line.removeprefix("\ufeff")  # the byte-order mark some editors write
            if not line.strip():
                continue
            parts = line.split("\t")
            empty = next((name for name, part in zip(columns, parts) if not part.strip()), None)
            if len(parts) < len(columns) or empty:
                got = f"an empty {empty}" if len(parts) >= len(columns) else len(parts)
                raise DataError(f"{path} line {number}: expected {len(columns)} tab-separated columns {what}, "
                                f"got {got}. Received: {line[:80]!r}.")
            if len(rows) == MAX_LINES:
                raise DataError(f"{path} holds more than {MAX_LINES:,} {what} lines, more than kzoo reads into "
                                f"memory; train on a sample of it (e.g. `shuf -n {MAX_LINES}`).")
            rows.append(parts[:len(columns)])
    if len(rows) < 2:
        raise DataError(f"{path} holds {len(rows)} {what} line(s); at least 2 are needed (train and test).")
    return rows


def _labels(path, raw):
    """Integer labels of a TSV's label column: whole numbers as they are, names as their sorted index."""
    if all(value.lstrip("-").isdigit() for value in raw):
        labels = np.array([int(v) for v in raw], dtype="int64")
        if labels.min() < 0:
            raise DataError(f"{path}: labels must be whole numbers >= 0 or class names. Received: {labels.min()}.")
        if set(labels.tolist()) == {0, 1}:
            return labels, SPECS["sentiment"]["class_names"]
        return labels, [str(i) for i in range(int(labels.max()) + 1)]
    names = sorted(set(raw))
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[v] for v in raw], dtype="int64"), names


def _read_class_folders(folder):
    names = sorted(p.name for p in _class_folders(folder))
    texts, labels, total = [], [], 0
    for label, name in enumerate(names):
        for file in sorted((folder / name).glob("*.txt")):
            if len(texts) == MAX_LINES:
                raise DataError(f"{folder} holds more than {MAX_LINES:,} .txt files, more than kzoo reads into "
                                f"memory; train on a sample of them.")
            with file.open("rb") as handle:
                raw = handle.read(MAX_LINE_BYTES + 1)
            if len(raw) > MAX_LINE_BYTES:
                raise DataError(f"{file} is longer than {MAX_LINE_BYTES:,} bytes; expected one text of the "
                                f"class {name!r} per .txt file.")
            total += len(raw)
            check_text_size(folder, total)
            texts.append(raw.decode("utf-8", errors="replace").strip())
            labels.append(label)
    if len(names) < 2 or len(texts) < 2:
        raise DataError(f"{folder} must hold at least two class subfolders with .txt files "
                        f"(found {len(names)} subfolder(s), {len(texts)} file(s)).")
    return np.array(texts, dtype=object), np.array(labels, dtype="int64"), names


def _class_folders(folder):
    return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
