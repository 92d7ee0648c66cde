"""Captioning data from real digits: one to four MNIST digits side by side, captioned in words.

``digit_captions``: a 28x112 grayscale canvas holds 1-4 digits left-aligned in 28-pixel slots, captioned
``"seven two nine"``. Training images use only the embedded MNIST training digits, test images only the
official MNIST test digits, so no test digit was ever seen in training. The images are composed when the
dataset loads, from a fixed seed (the same images every time); with ``data_dir`` the digits come from a
full MNIST folder instead (what the dataset ``mnist`` reads).
"""

from __future__ import annotations

import os

import numpy as np

from kzoo.data import Dataset

MODEL_CARD = {"task": "captioning"}

SPECS = {
    "digit_captions": {
        "description": "1-4 MNIST digits side by side (28x112), captioned in words ('seven two nine'); train "
                       "from MNIST training digits, test from the official test digits",
        "task": "captioning",
        "input_shape": (28, 112, 1),
        "train_examples": 20000,
        "test_examples": 2000,
        "source": "composed from MNIST (Y. LeCun, C. Cortes, C. Burges), the embedded subset by default",
        "license": "CC BY-SA 3.0",
        "data_dir": "a folder of MNIST files (as for the dataset mnist) to take the digits from",
    },
}

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MAX_DIGITS = 4
TRAIN_IMAGES, TEST_IMAGES = 20_000, 2_000
_SEEDS = {"train": 11, "test": 12}


def compose(images, labels, count, seed, max_digits=MAX_DIGITS):
    """``count`` canvases of 1-``max_digits`` random digits side by side, and their captions.

    Args:
        images: digits ``(N, 28, 28)`` uint8.
        labels: their classes ``(N,)``.
        count: canvases to make.
        seed: the seed of the digit counts and picks.

    Returns:
        ``(canvases, captions)``: uint8 ``(count, 28, 28 * max_digits)`` and an object array of strings.
    """
    rng = np.random.default_rng(seed)
    height, width = images.shape[1:3]
    canvases = np.zeros((count, height, width * max_digits), dtype=np.uint8)
    captions = np.empty(count, dtype=object)
    lengths = rng.integers(1, max_digits + 1, size=count)
    for i, length in enumerate(lengths):
        picks = rng.integers(0, len(images), size=length)
        for slot, pick in enumerate(picks):
            canvases[i, :, slot * width:(slot + 1) * width] = images[pick]
        captions[i] = " ".join(WORDS[int(labels[p])] for p in picks)
    return canvases, captions


def digit_captions(data_dir: str | os.PathLike | None = None) -> Dataset:
    """Captioned digit strips from the embedded MNIST digits, or from an MNIST folder (``data_dir``)."""
    from kzoo.data import arrays

    digits = arrays.mnist_embedded() if data_dir is None else arrays.mnist(data_dir)
    x_train, y_train = compose(digits.x_train, digits.y_train, TRAIN_IMAGES, _SEEDS["train"])
    x_test, y_test = compose(digits.x_test, digits.y_test, TEST_IMAGES, _SEEDS["test"])
    return Dataset("digit_captions", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   task="captioning")
