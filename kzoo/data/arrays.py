"""Image datasets held as numpy arrays: MNIST, Fashion-MNIST, CIFAR-10 and the embedded MNIST subset.

Each builder takes ``data_dir=None`` and returns a :class:`kzoo.data.Dataset`. With ``data_dir`` the data is
read from there (IDX files, a ``.npz`` file or CIFAR's pickled batches); without it, from the Keras cache, then
through ``keras.datasets``, which downloads once (:mod:`kzoo.data.keras_cache`).

``mnist_embedded`` (the default dataset) ships inside the package, in ``embedded/``; see the README there for
its provenance and ``scripts/make_embedded_data.py`` for how it was made.
"""

from __future__ import annotations

import os
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np

from kzoo.data import keras_cache
from kzoo.data.cifar import read_cifar_batches
from kzoo.data.dataset import Dataset
from kzoo.data.idx import read_idx
from kzoo.errors import DataError

MODEL_CARD = {"task": "image_classification", "num_classes": 10}

SPECS = {
    "mnist": {
        "description": "MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grayscale",
        "input_shape": (28, 28, 1),
        "class_names": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
        "train_examples": 60000,
        "test_examples": 10000,
        "source": "Y. LeCun, C. Cortes, C. Burges, http://yann.lecun.com/exdb/mnist/",
        "license": "CC BY-SA 3.0",
        "data_dir": "a folder with the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; train-images-idx3-ubyte-first10k.gz "
                    "is accepted too) or with mnist.npz, or the .npz file itself",
    },
    "fashion_mnist": {
        "description": "Fashion-MNIST clothing images: 60,000 training and 10,000 test images, 28x28 grayscale",
        "input_shape": (28, 28, 1),
        "class_names": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                        "Bag", "Ankle boot"],
        "train_examples": 60000,
        "test_examples": 10000,
        "source": "H. Xiao, K. Rasul, R. Vollgraf (Zalando Research), "
                  "https://github.com/zalandoresearch/fashion-mnist",
        "license": "MIT",
        "data_dir": "a folder with the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) or with fashion_mnist.npz, "
                    "or the .npz file itself",
    },
    "cifar10": {
        "description": "CIFAR-10 small colour images: 50,000 training and 10,000 test images, 32x32 RGB",
        "input_shape": (32, 32, 3),
        "class_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                        "truck"],
        "train_examples": 50000,
        "test_examples": 10000,
        "source": "A. Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009, "
                  "https://www.cs.toronto.edu/~kriz/cifar.html",
        "license": "no licence stated by the authors; cite the technical report",
        "data_dir": "the cifar-10-batches-py folder of cifar-10-python.tar.gz (data_batch_1..5, test_batch) or "
                    "its parent, a folder with cifar10.npz, or the .npz file itself",
    },
    "mnist_embedded": {
        "description": "MNIST shipped with kzoo: the first 10,000 official training images and the official "
                       "10,000 test images; works offline",
        "input_shape": (28, 28, 1),
        "class_names": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
        "train_examples": 10000,
        "test_examples": 10000,
        "source": "Y. LeCun, C. Cortes, C. Burges, http://yann.lecun.com/exdb/mnist/ "
                  "(provenance: kzoo/data/embedded/README.md)",
        "license": "CC BY-SA 3.0",
        "data_dir": "none: the data is inside the package",
    },
}

_SPLITS = ("x_train", "y_train", "x_test", "y_test")
# Split -> official IDX file name (without .gz), shared by MNIST and Fashion-MNIST.
_IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_MNIST_FIRST10K = "train-images-idx3-ubyte-first10k"


def mnist(data_dir: str | os.PathLike | None = None) -> Dataset:
    """MNIST from ``data_dir``, the Keras cache or a download (see ``SPECS["mnist"]["data_dir"]``)."""
    return _image_dataset("mnist", data_dir)


def fashion_mnist(data_dir: str | os.PathLike | None = None) -> Dataset:
    """Fashion-MNIST from ``data_dir``, the Keras cache or a download."""
    return _image_dataset("fashion_mnist", data_dir)


def cifar10(data_dir: str | os.PathLike | None = None) -> Dataset:
    """CIFAR-10 (channels last, ``(N, 32, 32, 3)``) from ``data_dir``, the Keras cache or a download."""
    return _image_dataset("cifar10", data_dir)


def mnist_embedded(data_dir: str | os.PathLike | None = None) -> Dataset:
    """The MNIST subset shipped in the package: 10,000 training and the 10,000 official test images.

    Raises:
        DataError: ``data_dir`` was given; this dataset has no other location.
    """
    if data_dir is not None:
        raise DataError(f"mnist_embedded ships inside kzoo and reads no data_dir. Received: data_dir={data_dir!r}. "
                        "Use the dataset mnist to read MNIST files from a folder.")
    with resources.as_file(resources.files("kzoo.data") / "embedded" / "mnist.npz") as path:
        arrays = _read_npz(path)
    return _make_dataset("mnist_embedded", arrays)


def _image_dataset(name, data_dir):
    if data_dir is not None:
        arrays = _read_path(name, Path(data_dir))
    else:
        arrays = _read_keras_cache(name)
        if arrays is None:
            arrays = keras_cache.download(name, SPECS[name]["data_dir"])
    return _make_dataset(name, arrays)


def _make_dataset(name, arrays):
    x_train, y_train, x_test, y_test = (np.asarray(a) for a in arrays)
    return Dataset(name, x_train, _flat_labels(y_train), x_test, _flat_labels(y_test),
                   class_names=list(SPECS[name]["class_names"]), task="image_classification")


def _flat_labels(y):
    """Keras' CIFAR labels are ``(N, 1)``; every kzoo dataset uses ``(N,)``."""
    return y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y


def _read_path(name, path):
    """The four arrays from a user-given ``data_dir``: a ``.npz`` file or a folder."""
    if not path.exists():
        raise DataError(f"data_dir {path} does not exist. For {name} pass {SPECS[name]['data_dir']}.")
    if path.is_file():
        if path.suffix != ".npz":
            raise DataError(f"data_dir {path} is a file but not a .npz archive. For {name} pass "
                            f"{SPECS[name]['data_dir']}.")
        return _read_npz(path)
    arrays = _read_folder(name, path)
    if arrays is None:
        found = sorted(p.name for p in path.iterdir())
        shown = ", ".join(found[:8]) + (f" and {len(found) - 8} more" if len(found) > 8 else "")
        raise DataError(f"data_dir {path} holds no {name} data; it contains: {shown or 'nothing'}. "
                        f"For {name} pass {SPECS[name]['data_dir']}.")
    return arrays


def _read_folder(name, folder):
    """The four arrays from a folder in any layout the dataset accepts, or ``None`` if none is there."""
    if name == "cifar10":
        for candidate in (folder, folder / "cifar-10-batches-py"):
            if (candidate / "data_batch_1").is_file():
                return read_cifar_batches(candidate)
    else:
        arrays = _read_idx_folder(name, folder)
        if arrays is not None:
            return arrays
    npz = folder / f"{name}.npz"
    if npz.is_file():
        return _read_npz(npz)
    archives = sorted(folder.glob("*.npz"))
    if len(archives) > 1:
        raise DataError(f"{folder} holds several .npz files ({', '.join(p.name for p in archives)}) and none is "
                        f"named {name}.npz. Pass the one to use as data_dir.")
    return _read_npz(archives[0]) if archives else None


def _read_idx_folder(name, folder):
    """MNIST-style IDX files of a folder, or ``None`` if it has none; a partial set is an error."""
    paths = {split: _find_idx(folder, base) for split, base in _IDX_NAMES.items()}
    if name == "mnist" and paths["x_train"] is None:
        paths["x_train"] = _find_idx(folder, _MNIST_FIRST10K)
    if not any(paths.values()):
        return None
    missing = [f"{_IDX_NAMES[split]}.gz" for split, path in paths.items() if path is None]
    if missing:
        raise DataError(f"{folder} holds only part of the IDX files of {name}: {', '.join(missing)} "
                        "is missing. Copy all four files there.")
    x_train, x_test = read_idx(paths["x_train"], "images"), read_idx(paths["x_test"], "images")
    y_train, y_test = read_idx(paths["y_train"], "labels"), read_idx(paths["y_test"], "labels")
    if paths["x_train"].name.startswith(_MNIST_FIRST10K):
        y_train = y_train[:len(x_train)]  # the subset holds the first images in the official order
    return x_train, y_train, x_test, y_test


def _find_idx(folder, base):
    for candidate in (folder / f"{base}.gz", folder / base):
        if candidate.is_file():
            return candidate
    return None


def _read_npz(path):
    """``x_train, y_train, x_test, y_test`` of an ``.npz`` archive; pickled (object) arrays are refused."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable .npz archive ({exc}).") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path} holds a single array, not an .npz archive with x_train, y_train, x_test, y_test.")
    with archive:
        missing = [key for key in _SPLITS if key not in archive.files]
        if missing:
            raise DataError(f"{path} lacks {', '.join(missing)}; a dataset archive needs the arrays x_train, "
                            f"y_train, x_test, y_test. It holds: {', '.join(archive.files) or 'nothing'}.")
        try:
            return tuple(archive[key] for key in _SPLITS)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path} is corrupt or holds pickled objects ({exc}); save plain numeric arrays "
                            "with numpy.savez.") from None




def _read_keras_cache(name):
    for path in keras_cache.cached_paths(name):
        if path.is_file():
            return _read_npz(path)
        arrays = _read_folder(name, path)
        if arrays is not None:
            return arrays
    return None
