"""The :class:`Dataset` type every dataset source returns, and the checks run on it before training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kzoo.errors import DataError
from kzoo.tasks.names import CAPTIONING, TEXT_CLASSIFICATION, TRANSLATION
from kzoo.tasks.names import DATASET_TASKS as TASKS


@dataclass
class Dataset:
    """Train and test splits of a dataset, as numpy arrays (images) or one string (text).

    Attributes:
        name: the registered name.
        x_train: training images, ``(N, H, W)`` or ``(N, H, W, C)``; ``None`` for text.
        y_train: integer class labels, ``(N,)``; ``None`` for text.
        x_test: test images, same layout as ``x_train``; ``None`` for text.
        y_test: integer class labels of the test images; ``None`` for text.
        class_names: one name per class, or ``None`` when the classes are unnamed.
        task: ``"image_classification"`` or ``"text"``.
        text: the corpus of a text dataset; ``None`` for images.
    """

    name: str
    x_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: list[str] | None = None
    task: str = "image_classification"
    text: str | None = None

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """One example's shape, channels last: ``(28, 28, 1)`` for MNIST; ``None`` for text."""
        if self.x_train is None:
            return None
        shape = tuple(int(d) for d in self.x_train.shape[1:])
        return shape + (1,) if len(shape) == 2 else shape

    @property
    def num_classes(self) -> int | None:
        """The number of class names, else the largest label plus one; ``None`` for text or no labels."""
        if self.class_names is not None:
            return len(self.class_names)
        labels = [y for y in (self.y_train, self.y_test) if y is not None and y.size]
        if not labels:
            return None
        return int(max(y.max() for y in labels)) + 1

    def __repr__(self):
        if self.task == "text":
            return f"Dataset(name={self.name!r}, task='text', characters={len(self.text or '')})"
        sizes = ", ".join(f"{split}={None if x is None else len(x)}"
                          for split, x in (("train", self.x_train), ("test", self.x_test)))
        return (f"Dataset(name={self.name!r}, task={self.task!r}, {sizes}, input_shape={self.input_shape}, "
                f"num_classes={self.num_classes})")


def validate_dataset(ds: Dataset, num_classes: int | None = None) -> None:
    """Check that a dataset can be trained on, and say precisely what is wrong if not.

    Image datasets: both splits present and non-empty, images ``(N, H, W)`` or ``(N, H, W, C)`` with 1 or 3
    channels and the same example shape in both splits, as many labels as images, finite pixel values,
    integer labels in ``[0, num_classes)``. Text datasets: a non-empty string.

    Args:
        ds: the dataset to check.
        num_classes: the number of classes of the model that will train on it; ``None`` uses the dataset's
            own (:attr:`Dataset.num_classes`).

    Raises:
        DataError: the first problem found, naming the dataset, the split and the values received.
    """
    where = f"Dataset {ds.name!r}"
    if ds.task not in TASKS:
        raise DataError(f"{where} has task {ds.task!r}; expected one of: {', '.join(TASKS)}.")
    if ds.task == "text":
        if not isinstance(ds.text, str) or not ds.text.strip():
            received = "no text" if ds.text is None else f"{type(ds.text).__name__} of length {len(ds.text)}"
            raise DataError(f"{where} is a text dataset but holds {received}; it needs a non-empty string.")
        return
    if ds.task in (TRANSLATION, TEXT_CLASSIFICATION, CAPTIONING):
        _validate_paired(where, ds)
        return
    for split in ("train", "test"):
        _validate_split(where, split, getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}"))
    if ds.x_train.shape[1:] != ds.x_test.shape[1:]:
        raise DataError(f"{where}: training and test images differ in shape: {ds.x_train.shape[1:]} (train) vs "
                        f"{ds.x_test.shape[1:]} (test).")
    classes = num_classes if num_classes is not None else ds.num_classes
    source = "the model has" if num_classes is not None else "the dataset has"
    for split in ("train", "test"):
        labels = getattr(ds, f"y_{split}")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= classes:
            raise DataError(
                f"{where}: labels of the {split} split must lie in [0, {classes}) because {source} {classes} "
                f"classes; found labels from {low} to {high}. Use a model with num_classes={high + 1} or "
                "relabel the data."
            )


def _validate_split(where, split, x, y):
    """Shape, count, finiteness and label-type checks of one split."""
    if x is None or y is None:
        missing = ", ".join(name for name, value in ((f"x_{split}", x), (f"y_{split}", y)) if value is None)
        raise DataError(f"{where} has no {missing}; an image dataset needs images and labels for train and test.")
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise DataError(f"{where}: x_{split} and y_{split} must be numpy arrays. Received: "
                        f"{type(x).__name__} and {type(y).__name__}.")
    if x.ndim not in (3, 4):
        raise DataError(f"{where}: x_{split} must be (N, height, width) or (N, height, width, channels). "
                        f"Received: shape {x.shape}.")
    if x.ndim == 4 and x.shape[-1] not in (1, 3):
        raise DataError(f"{where}: x_{split} must have 1 (grayscale) or 3 (RGB) channels in the last axis "
                        f"(channels last). Received: shape {x.shape} with {x.shape[-1]} channels.")
    if len(x) == 0:
        raise DataError(f"{where}: the {split} split is empty (x_{split} has shape {x.shape}).")
    if y.ndim != 1:
        raise DataError(f"{where}: y_{split} must be a 1-D array of class indices. Received: shape {y.shape}.")
    if len(x) != len(y):
        raise DataError(f"{where}: the {split} split has {len(x)} images but {len(y)} labels; "
                        "every image needs exactly one label.")
    if x.dtype.kind not in "uif":
        raise DataError(f"{where}: x_{split} must hold numbers. Received: dtype {x.dtype}.")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int(x.size - np.isfinite(x).sum())
        raise DataError(f"{where}: x_{split} holds {bad} NaN or infinite values; clean or drop those images.")
    if y.dtype.kind not in "ui":
        raise DataError(f"{where}: y_{split} must hold integer class indices. Received: dtype {y.dtype}; "
                        "convert with y.astype('int64') if the values are whole numbers.")


def _validate_paired(where, ds):
    """Translation (strings to strings), text classification (strings to labels), captioning (images to strings)."""
    for split in ("train", "test"):
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        if x is None or y is None or len(x) == 0:
            raise DataError(f"{where} has an empty or missing {split} split; a {ds.task} dataset needs both.")
        if len(x) != len(y):
            raise DataError(f"{where}: the {split} split has {len(x)} inputs but {len(y)} targets.")
        texts = [x] if ds.task != CAPTIONING else []
        texts += [y] if ds.task != TEXT_CLASSIFICATION else []
        for values in texts:
            if not all(isinstance(v, str) and v.strip() for v in values):
                raise DataError(f"{where}: every {split} text must be a non-empty string.")
