"""kzoo's built-in datasets: MNIST, Fashion-MNIST, CIFAR-10, the embedded MNIST subset and The Time Machine.

Each builder takes ``data_dir=None`` and returns a :class:`kzoo.data.Dataset`. With ``data_dir`` the data is
read from there (IDX files, a ``.npz`` file, CIFAR's pickled batches or a ``.txt`` file); without it, from the
Keras cache (``$KERAS_HOME/datasets``, default ``~/.keras/datasets``), then through ``keras.datasets``, which
downloads once. Keras is imported only for that download.

``mnist_embedded`` (the default dataset) and ``timemachine`` ship inside the package, in ``embedded/``; see
the README there for their provenance and ``scripts/make_embedded_data.py`` for how they were made.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np

from kzoo.data import Dataset
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
    "timemachine": {
        "description": "H. G. Wells, The Time Machine (1895): about 180,000 characters of English text, "
                       "shipped with kzoo",
        "task": "text",
        "input_shape": None,
        "num_classes": None,
        "class_names": None,
        "source": "Project Gutenberg eBook #35, https://www.gutenberg.org/ebooks/35 (header and licence removed)",
        "license": "public domain in the USA",
        "data_dir": "a UTF-8 .txt file (or a folder with timemachine.txt) to read instead of the embedded text",
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
# Where Keras keeps each dataset, relative to $KERAS_HOME/datasets, in the order they are tried.
_KERAS_CACHE = {
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
_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF .*$", re.MULTILINE)
_GUTENBERG_END = re.compile(r"^\*\*\* ?END OF .*$", re.MULTILINE)
# The only globals a pickled CIFAR batch needs (numpy arrays in a dict); anything else is refused.
_CIFAR_PICKLE_GLOBALS = frozenset({
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
})


# --------------------------------------------------------------------------------------------------------------
# Builders (registered in pyproject.toml under kzoo.datasets)
# --------------------------------------------------------------------------------------------------------------


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
        source, raw = str(path), path.read_bytes()
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


def strip_gutenberg(text: str) -> str:
    """The text between Project Gutenberg's ``*** START OF`` and ``*** END OF`` lines, stripped of blank edges.

    Text without both markers is only stripped of leading and trailing whitespace.
    """
    start, end = _GUTENBERG_START.search(text), _GUTENBERG_END.search(text)
    if start and end and start.end() < end.start():
        text = text[start.end():end.start()]
    return text.strip()


# --------------------------------------------------------------------------------------------------------------
# Image datasets: data_dir, Keras cache, download
# --------------------------------------------------------------------------------------------------------------


def _image_dataset(name, data_dir):
    if data_dir is not None:
        arrays = _read_path(name, Path(data_dir))
    else:
        arrays = _read_keras_cache(name)
        if arrays is None:
            arrays = _download(name)
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
                return _read_cifar_batches(candidate)
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


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays in plain containers and refuses every other global (no code execution)."""

    def find_class(self, module, name):
        if (module, name) in _CIFAR_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_cifar_batches(folder):
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


def _keras_datasets_dir():
    """Where Keras caches datasets: ``$KERAS_HOME/datasets``, default ``~/.keras/datasets``."""
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser() / "datasets"


def _read_keras_cache(name):
    base = _keras_datasets_dir()
    for relative in _KERAS_CACHE[name]:
        path = base / relative
        if path.is_file():
            return _read_npz(path)
        if path.is_dir():
            arrays = _read_folder(name, path)
            if arrays is not None:
                return arrays
    return None


def _download(name):
    """Fetch through ``keras.datasets``; any failure becomes a DataError that says where to put the files."""
    try:
        return _keras_load_data(name)
    except Exception as exc:  # offline, proxy, missing backend...: the user needs the same advice
        reason = str(exc).splitlines()[0] if str(exc) else ""
        hint = _OFFLINE_HINT[name].format(cache=_keras_datasets_dir())
        raise DataError(
            f"Dataset {name} is not on this machine and keras.datasets could not download it "
            f"({type(exc).__name__}: {reason}). To use it offline, {hint}; or pass --data-dir DIR "
            f"(data_dir=DIR) where DIR is {SPECS[name]['data_dir']}."
        ) from exc


def _keras_load_data(name):
    """``keras.datasets.<name>.load_data()`` as four arrays, channels last (imports keras)."""
    from kzoo.backend import set_backend

    set_backend()  # keras must not be imported before the backend is fixed
    import keras

    (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    if x_train.ndim == 4 and x_train.shape[-1] not in (1, 3):  # keras.json says channels_first
        x_train, x_test = x_train.transpose(0, 2, 3, 1), x_test.transpose(0, 2, 3, 1)
    return x_train, y_train, x_test, y_test
