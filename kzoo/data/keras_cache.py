"""Keras' dataset cache (``$KERAS_HOME/datasets``) and the ``keras.datasets`` download, with the offline advice.

Keras is imported only for a download, after kzoo has fixed the backend.
"""

from __future__ import annotations

import os
from pathlib import Path

from kzoo.errors import DataError, first_line

# Where Keras keeps each dataset, relative to $KERAS_HOME/datasets, in the order they are tried.
CACHE_PATHS = {
    "mnist": ("mnist.npz", "mnist"),
    "fashion_mnist": ("fashion-mnist",),
    "cifar10": ("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py"),
}
# What to copy where, for the offline error message ({cache} is the Keras datasets folder).
_OFFLINE_HINT = {
    "mnist": "copy mnist.npz (keys x_train, y_train, x_test, y_test) to {cache}/mnist.npz, or the four MNIST IDX files "
             "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
             "t10k-labels-idx1-ubyte.gz) into {cache}/mnist/",
    "fashion_mnist": "copy the four IDX files of Fashion-MNIST (train-images-idx3-ubyte.gz, "
                     "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) into "
                     "{cache}/fashion-mnist/",
    "cifar10": "extract cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz) into "
               "{cache}/ so that {cache}/cifar-10-batches-py/ holds data_batch_1 ... data_batch_5 and test_batch",
}


def keras_datasets_dir():
    """Where Keras caches datasets: ``$KERAS_HOME/datasets``, default ``~/.keras/datasets``."""
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser() / "datasets"


def cached_paths(name):
    """The existing files and folders of the Keras cache that may hold ``name``, in the order to try them."""
    base = keras_datasets_dir()
    return [base / relative for relative in CACHE_PATHS[name] if (base / relative).exists()]


def download(name, data_dir_hint):
    """Fetch through ``keras.datasets``; any failure becomes a DataError that says where to put the files.

    Args:
        name: ``mnist``, ``fashion_mnist`` or ``cifar10``.
        data_dir_hint: what ``data_dir`` may be for this dataset, for the message.
    """
    try:
        return keras_load_data(name)
    except Exception as exc:  # offline, proxy, missing backend...: the user needs the same advice
        hint = _OFFLINE_HINT[name].format(cache=keras_datasets_dir())
        raise DataError(
            f"Dataset {name} is not on this machine and keras.datasets could not download it "
            f"({type(exc).__name__}: {first_line(exc)}). To use it offline, {hint}; or pass --data-dir DIR "
            f"(data_dir=DIR) where DIR is {data_dir_hint}."
        ) from exc


def keras_load_data(name):
    """``keras.datasets.<name>.load_data()`` as four arrays, channels last (imports keras)."""
    from kzoo.backend import set_backend

    set_backend()  # keras must not be imported before the backend is fixed
    import keras

    (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    if x_train.ndim == 4 and x_train.shape[-1] not in (1, 3):  # keras.json says channels_first
        x_train, x_test = x_train.transpose(0, 2, 3, 1), x_test.transpose(0, 2, 3, 1)
    return x_train, y_train, x_test, y_test
