"""Folders of real images for the image-folder tests: the embedded MNIST digits written as PNG files."""

import os

import numpy as np
import pytest


def _write_digits(root, count, *, start=0, classes=None, split=None, suffix=".png"):
    """The first ``count`` embedded training digits (from ``start``) as ``root[/split]/<class>/<i>.png``.

    Returns the images and labels written, in file order (sorted by class, then index).
    """
    from PIL import Image

    from kzoo.data import load_dataset

    ds = load_dataset("mnist_embedded")
    x, y = ds.x_train[start:start + count], ds.y_train[start:start + count].astype("int64")
    if classes is not None:
        keep = np.isin(y, classes)
        x, y = x[keep], y[keep]
    base = os.path.join(root, split) if split else root
    for i, (image, label) in enumerate(zip(x, y)):
        folder = os.path.join(base, f"digit_{label}")
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(image).save(os.path.join(folder, f"{start + i:05d}{suffix}"))
    order = np.lexsort((np.arange(len(y)), y))
    return x[order], y[order]


@pytest.fixture
def write_digits():
    """``write_digits(root, count, start=0, classes=None, split=None, suffix=".png") -> (images, labels)``."""
    return _write_digits


@pytest.fixture
def digits_folder(tmp_path):
    root = tmp_path / "digits"
    _write_digits(root, 300)
    return root
