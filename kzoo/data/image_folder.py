"""Image folders: a user's own photos in class subfolders, split into train, validation and test file lists.

Two layouts are read, the ones Keras (``image_dataset_from_directory``) and torchvision (``ImageFolder``) read:

* class subfolders, ``ROOT/<class>/*.png``: kzoo splits each class's files, seeded and stratified, into train,
  validation and test (default 80/10/10);
* split subfolders, ``ROOT/train/<class>/``, with optional ``val/`` (or ``valid/``, ``validation/``) and
  ``test/``: used as given; without a validation folder, validation is carved out of ``train/``, never out of
  ``test/``; without ``test/``, the test split is carved out of ``train/`` too.

Class names are the class folder names in sorted order (label ``i`` is the ``i``-th name). Every file Pillow
reads counts (PNG, JPEG, BMP, GIF, WebP, TIFF; extensions in any case); hidden files and other files are
ignored. Only the files' headers are read here (mode and size); decoding happens while training, in
:mod:`kzoo.data.pipeline`. Nothing here imports keras.
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kzoo.data.image_decode import decode_image  # the decoder of every split (and re-exported)
from kzoo.errors import DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
VALIDATION_FOLDERS = ("val", "valid", "validation")
SPLITS = ("train", "val", "test")
# Pillow modes that hold one grey channel (and palettes of greys); every other mode (RGB, RGBA, CMYK, LA...) is
# colour. WebP and JPEG files saved from grey images by some tools are RGB: --channels 1 brings them to grey.
_GRAY_MODES = frozenset({"1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
FILE_LIST = "data_files.json"  # the file lists of a run, in its folder


class ImageDataWarning(UserWarning):
    """An image file was skipped (unreadable, truncated or not an image after all)."""


@dataclass
class FileList:
    """Image files and their integer labels, one split of an :class:`ImageFolder`."""

    paths: list
    labels: np.ndarray

    def __len__(self):
        return len(self.paths)

    def head(self, count):
        return FileList(self.paths[:count], self.labels[:count])


@dataclass
class ImageFolder:
    """A folder of images as a dataset: file lists, class names, and the size every image is brought to.

    Attributes:
        name: the folder's base name (used in run folder names).
        root: the folder, absolute.
        layout: ``"classes"`` (class subfolders) or ``"splits"`` (train/val/test subfolders).
        class_names: sorted class folder names.
        train, val, test: the :class:`FileList` of each split (paths absolute).
        image_size: ``(height, width)`` every image is resized to.
        channels: 1 (grayscale) or 3 (RGB).
        skipped: files found unreadable while scanning (path, reason).
        task: always ``"image_classification"``.
    """

    name: str
    root: str
    layout: str
    class_names: list
    train: FileList
    val: FileList
    test: FileList
    image_size: tuple
    channels: int
    skipped: list = field(default_factory=list)
    task: str = "image_classification"

    @property
    def input_shape(self):
        return (*self.image_size, self.channels)

    @property
    def num_classes(self):
        return len(self.class_names)

    def split(self, name):
        return getattr(self, name)

    def file_lists(self):
        """The plain-data record of the split (written to a run folder as :data:`FILE_LIST`)."""
        return {"root": self.root, "layout": self.layout, "class_names": list(self.class_names),
                "image_size": list(self.image_size), "channels": self.channels,
                **{split: [[os.path.relpath(p, self.root), int(y)] for p, y in zip(fl.paths, fl.labels)]
                   for split in SPLITS if (fl := self.split(split)) is not None}}

    def __repr__(self):
        return (f"ImageFolder(name={self.name!r}, layout={self.layout!r}, classes={self.num_classes}, "
                f"train={len(self.train)}, val={len(self.val)}, test={len(self.test)}, "
                f"input_shape={self.input_shape})")



def parse_image_size(value):
    """``28``, ``"28"``, ``"32x48"`` (height x width) or ``(32, 48)`` -> ``(height, width)``; ``None`` stays."""
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        height, width = value
    elif isinstance(value, int) and not isinstance(value, bool):
        height = width = value
    else:
        parts = str(value).lower().replace(" ", "").split("x")
        if len(parts) not in (1, 2) or not all(p.isdigit() for p in parts):
            raise DataError(f"image_size must be N or HxW (e.g. 64 or 48x64). Received: image_size={value!r}.")
        height, width = (int(parts[0]), int(parts[-1]))
    if not (isinstance(height, int) and isinstance(width, int)) or height < 1 or width < 1:
        raise DataError(f"image_size must be positive. Received: image_size={value!r}.")
    return int(height), int(width)


def is_image_file(path):
    name = os.path.basename(path)
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def open_image_folder(path, *, val_split=0.1, test_split=0.1, seed=0, image_size=None, channels=None,
                      strict=False):
    """Scan a folder of images in either layout and split it (see the module docstring).

    Args:
        path: the folder.
        val_split: fraction of each class held out for validation (of ``train/`` in the split layout).
        test_split: fraction of each class held out for testing (class layout, or a split layout without
            ``test/``).
        seed: seeds the split; the same seed and files give the same split.
        image_size: ``(height, width)``, ``N`` or ``"HxW"``; default: the most common size among the images.
        channels: 1 or 3; default: 1 when every image is grayscale, else 3.
        strict: an unreadable image is an error instead of a warning.

    Raises:
        DataError: the folder is missing or unreadable, holds no images, a class folder is empty, there is
            only one class, or a split option is out of range.
    """
    root = Path(os.path.expanduser(os.fspath(path))).resolve()
    if not root.exists():
        raise DataError(f"No such folder: {path}. --data takes a registered dataset name (kzoo datasets) or a "
                        "folder of images in class subfolders (ROOT/<class>/*.jpg).")
    if not root.is_dir():
        raise DataError(f"{path} is a file; --data PATH takes a folder of images in class subfolders "
                        "(ROOT/<class>/*.jpg) or split subfolders (ROOT/train/<class>/...).")
    if not os.access(root, os.R_OK | os.X_OK):
        raise DataError(f"Folder {path} cannot be read (permission denied).")
    for name, value in (("val_split", val_split), ("test_split", test_split)):
        if not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise DataError(f"{name} must be in [0, 1). Received: {name}={value!r}.")
    if val_split + test_split >= 1:
        raise DataError(f"val_split + test_split must leave training images. Received: val_split={val_split}, "
                        f"test_split={test_split}.")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3. Received: channels={channels!r}.")
    size = parse_image_size(image_size)

    subfolders = {p.name.lower(): p for p in _subfolders(root)}
    rng = np.random.default_rng(seed)
    if "train" in subfolders:
        layout = "splits"
        class_names = _class_names(subfolders["train"])
        train = _list_classes(subfolders["train"], class_names)
        val_dir = next((subfolders[n] for n in VALIDATION_FOLDERS if n in subfolders), None)
        test_dir = subfolders.get("test")
        for split_dir in (val_dir, test_dir):
            if split_dir is not None:
                extra = sorted(set(_class_names(split_dir, allow_empty=True)) - set(class_names))
                if extra:
                    raise DataError(f"{split_dir} has class folders that {subfolders['train']} lacks: "
                                    f"{', '.join(extra)}. Every class needs training images.")
        test = _list_classes(test_dir, class_names, allow_missing=True) if test_dir else None
        val = _list_classes(val_dir, class_names, allow_missing=True) if val_dir else None
        carve_test = 0.0 if test is not None else test_split
        carve_val = 0.0 if val is not None else val_split
        train, carved_val, carved_test = _stratified_split(train, carve_val, carve_test, rng)
        val = val if val is not None else carved_val
        test = test if test is not None else carved_test
    else:
        layout = "classes"
        class_names = _class_names(root)
        train, val, test = _stratified_split(_list_classes(root, class_names), val_split, test_split, rng)

    skipped = []
    modes, sizes = _scan_headers(train, val, test, skipped, strict)
    if channels is None:
        channels = 1 if modes and all(m in _GRAY_MODES for m in modes) else 3
    if size is None:
        size = Counter(sizes).most_common(1)[0][0] if sizes else (28, 28)
    if not len(train):
        raise DataError(f"{root} leaves no readable training images after the split.")
    return ImageFolder(root.name, str(root), layout, class_names, train, val, test, size, channels, skipped)


def read_file_lists(record):
    """An :class:`ImageFolder` from a run's recorded file lists (``kzoo evaluate RUN`` reuses its test files).

    Raises:
        DataError: the recorded folder or one of its test files is gone.
    """
    root = record["root"]
    if not os.path.isdir(root):
        raise DataError(f"The run's image folder {root} no longer exists; pass --data PATH to evaluate on "
                        "another folder.")

    def files(split):
        rows = record.get(split) or []
        return FileList([os.path.join(root, p) for p, _ in rows], np.array([y for _, y in rows], dtype="int64"))

    return ImageFolder(os.path.basename(root), root, record["layout"], list(record["class_names"]), files("train"),
                       files("val"), files("test"), tuple(record["image_size"]), int(record["channels"]))


def write_file_lists(folder, run_dir):
    """The run's file lists (``data_files.json``), written atomically under a unique temporary name."""
    from kzoo.engine.checkpoints import atomic_write_text

    atomic_write_text(os.path.join(run_dir, FILE_LIST), json.dumps(folder.file_lists()))


def load_file_lists(run_dir):
    """The recorded file lists of a run folder, or ``None`` when it did not train on a folder."""
    path = os.path.join(run_dir, FILE_LIST)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def expand_image_paths(items):
    """Image files named directly, found under folders (recursively, sorted) or matched by glob patterns.

    Raises:
        DataError: an item names nothing, or a folder or pattern holds no images.
    """
    import glob

    paths = []
    for item in items:
        item = os.path.expanduser(os.fspath(item))
        if os.path.isdir(item):
            found = sorted(os.path.join(d, f) for d, dirs, files in os.walk(item)
                           if not any(part.startswith(".") for part in Path(d).relative_to(item).parts)
                           for f in files if is_image_file(f))
            if not found:
                raise DataError(f"Folder {item} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
        elif os.path.exists(item):
            found = [item]
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p) and is_image_file(p))
            if not found:
                raise DataError(f"No images match {item}.")
        else:
            raise DataError(f"No such image file, folder or pattern: {item}")
        paths.extend(found)
    return paths


def load_image(path, input_shape):
    """Read an image file as a float32 array in [0, 1] shaped like the model input ``(H, W, C)`` (resized)."""
    from PIL import UnidentifiedImageError

    height, width, channels = input_shape
    try:
        array = decode_image(path, (height, width), channels).astype("float32") / 255.0
    except FileNotFoundError:
        raise DataError(f"No such image file: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path} is not a readable image ({exc}).") from None
    return array


def as_model_input(array, input_shape, invert=None):
    """A loaded image, inverted when asked or, with ``invert=None``, when a grayscale image's border is light
    (a dark digit on light paper becomes MNIST's light digit on black)."""
    auto = input_shape[-1] == 1 and np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]]).mean() > 0.5
    return 1.0 - array if invert or (invert is None and auto) else array


def image_batch(images, input_shape, invert=None):
    """Image files as one float32 batch for a model input ``(H, W, C)`` (``invert``: :func:`as_model_input`)."""
    return np.stack([as_model_input(load_image(path, input_shape), input_shape, invert) for path in images])


def _subfolders(folder):
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise DataError(f"Folder {folder} cannot be read ({exc.strerror or exc}).") from None


def _class_names(folder, allow_empty=False):
    names = [p.name for p in _subfolders(folder)]
    if allow_empty:
        return names
    if not names:
        loose = sum(1 for p in folder.iterdir() if p.is_file() and is_image_file(p))
        found = f"{loose} images but no class subfolders" if loose else "no class subfolders"
        raise DataError(f"{folder} holds {found}. Put each class's images in a subfolder named after the class "
                        "(ROOT/cat/*.jpg, ROOT/dog/*.jpg) or use split subfolders (ROOT/train/<class>/).")
    if len(names) == 1:
        raise DataError(f"{folder} has a single class folder ({names[0]}); a classifier needs at least two "
                        "classes.")
    return names


def _list_classes(folder, class_names, allow_missing=False):
    """Every image file under ``folder/<class>/`` (recursively), sorted, with its label."""
    paths, labels = [], []
    for label, name in enumerate(class_names):
        class_dir = folder / name
        if not class_dir.is_dir():
            if allow_missing:
                continue
            raise DataError(f"{class_dir} is missing.")
        found = []
        for dirpath, dirnames, filenames in os.walk(class_dir, onerror=_raise_unreadable):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found.extend(os.path.join(dirpath, f) for f in filenames if is_image_file(f))
        if not found and not allow_missing:
            raise DataError(f"Class folder {class_dir} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}). "
                            "Add images or remove the folder.")
        found.sort()
        paths.extend(found)
        labels.extend([label] * len(found))
    if not paths:
        raise DataError(f"{folder} holds no images in its class folders.")
    return FileList(paths, np.array(labels, dtype="int64"))


def _raise_unreadable(exc):
    raise DataError(f"{exc.filename} cannot be read ({exc.strerror or exc}).")


def _stratified_split(files, val_split, test_split, rng):
    """Per class, a seeded shuffle cut into train / val / test (a class keeps >= 1 training image)."""
    parts = {split: [] for split in SPLITS}
    for label in np.unique(files.labels):
        members = np.flatnonzero(files.labels == label)
        members = members[rng.permutation(len(members))]
        n = len(members)
        n_test = int(round(n * test_split)) if test_split else 0
        n_val = int(round(n * val_split)) if val_split else 0
        while n_test + n_val >= n and (n_test or n_val):  # tiny classes: keep a training image
            if n_test >= n_val:
                n_test -= 1
            else:
                n_val -= 1
        parts["test"].append(members[:n_test])
        parts["val"].append(members[n_test:n_test + n_val])
        parts["train"].append(members[n_test + n_val:])
    result = []
    for split in SPLITS:
        index = np.sort(np.concatenate(parts[split])) if parts[split] else np.zeros(0, "int64")
        if split == "train":  # a seeded shuffle, so that --limit N keeps a mix of classes
            index = index[rng.permutation(len(index))]
        result.append(FileList([files.paths[i] for i in index], files.labels[index]))
    return tuple(result)


def _scan_headers(train, val, test, skipped, strict):
    """Modes and sizes of every image, from its header; files Pillow cannot open are dropped from their split."""
    from PIL import Image, UnidentifiedImageError

    modes, sizes = set(), []
    for files in (train, val, test):
        keep = np.ones(len(files), dtype=bool)
        for i, path in enumerate(files.paths):
            try:
                with Image.open(path) as image:
                    modes.add("L" if image.mode == "P" and _gray_palette(image) else image.mode)
                    sizes.append((image.height, image.width))
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                report_bad_image(path, exc, strict)
                skipped.append(path)
                keep[i] = False
        if not keep.all():
            files.paths[:] = [p for p, k in zip(files.paths, keep) if k]
            files.labels = files.labels[keep]
    return modes, sizes


def _gray_palette(image):
    palette = image.getpalette() or []
    if "transparency" in image.info:
        return False
    return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette) - 2, 3))


def report_bad_image(path, exc, strict):
    """A warning naming the file, or with ``strict`` a :class:`DataError`."""
    reason = f"{type(exc).__name__}: {exc}"
    if strict:
        raise DataError(f"{path} is not a readable image ({reason}). Remove or replace it, or train without "
                        "--strict-data to skip unreadable images with a warning.")
    warn(f"skipping {path}: not a readable image ({reason})")


def warn(message):
    """An :class:`ImageDataWarning` shown as one line (``kzoo: ImageDataWarning: ...``), without source code."""
    warnings.warn_explicit(message, ImageDataWarning, filename="kzoo", lineno=0, module="kzoo")
