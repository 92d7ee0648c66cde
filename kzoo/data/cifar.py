"""CIFAR-10's pickled batches (``cifar-10-batches-py``), read without executing any code they could hold."""

from __future__ import annotations

import pickle

import numpy as np

from kzoo.errors import DataError

# The only globals a pickled CIFAR batch needs (numpy arrays in a dict); anything else is refused.
_CIFAR_PICKLE_GLOBALS = frozenset({
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
})


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays in plain containers and refuses every other global (no code execution)."""

    def find_class(self, module, name):
        if (module, name) in _CIFAR_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_cifar_batches(folder):
    """The five training batches and the test batch of ``cifar-10-batches-py``, channels last."""
    train = [_read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = _read_cifar_batch(folder / "test_batch")
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_test, y_test)


def _read_cifar_batch(path):
    if not path.is_file():
        raise DataError(f"CIFAR-10 batch {path} is missing; the folder needs data_batch_1 ... data_batch_5 and "
                        "test_batch from cifar-10-python.tar.gz.")
    try:
        with open(path, "rb") as handle:
            batch = _NumpyOnlyUnpickler(handle, encoding="bytes").load()
        data, labels = batch[b"data"], batch[b"labels"]
        images = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = np.asarray(labels, dtype=np.uint8)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"{path} is not a readable CIFAR-10 batch ({type(exc).__name__}: {exc}). Extract "
                        "cifar-10-python.tar.gz again.") from None
    return images, labels
