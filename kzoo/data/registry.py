"""The dataset registry: list, describe and load the datasets of the ``kzoo.datasets`` entry-point group.

Listing and describing read a builder module's ``SPECS`` literal without importing it (see
:mod:`kzoo.registry`); loading imports the builder, calls it and checks what it returns. ``--data PATH`` of a
text task becomes the dataset whose builder reads that file, with the path as its ``data_dir``
(:func:`dataset_of_path`), so a run records it as ``--data NAME --data-dir PATH`` would.
"""

from __future__ import annotations

import os

from kzoo.data.dataset import Dataset, validate_dataset
from kzoo.errors import DataError, PluginError
from kzoo.registry import datasets

DEFAULT_DATASET = "mnist_embedded"


def looks_like_path(data):
    """Whether ``--data`` names a file or folder rather than a registered dataset: it has a path separator, a
    ``~``, a leading dot or a file suffix (``reviews.tsv``, even when missing), or it exists (a registered name
    wins)."""
    if not isinstance(data, (str, os.PathLike)):
        return False
    text = os.fspath(data)
    if any(c in text for c in "/\\~") or text.startswith("."):
        return True
    if not (os.path.splitext(text)[1] or os.path.exists(text)):
        return False
    return text not in list_datasets()


def list_datasets(pattern: str | None = None, *, task: str | None = None) -> list[str]:
    """Names of the registered datasets, optionally filtered by a shell wildcard and a task.

    Reads metadata only: no dataset module, keras or framework is imported.

    Args:
        pattern: shell wildcard such as ``"*mnist*"``; ``None`` lists all.
        task: keep only datasets of this task (``"image_classification"`` or ``"text"``).

    Returns:
        The sorted display names.
    """
    return datasets.names(pattern, task=task)


def dataset_info(name: str) -> dict:
    """Everything the registry knows about a dataset: description, task, shapes, classes, source, licence.

    Raises:
        UnknownNameError: ``name`` is not registered (the message suggests close names).
    """
    return datasets.info(name)


def load_dataset(name: str = DEFAULT_DATASET, data_dir: str | os.PathLike | None = None,
                 limit: int | None = None) -> Dataset:
    """Load a registered dataset and check it.

    Args:
        name: registered (``"mnist"``) or qualified (``"kzoo:mnist"``) name. The default, ``mnist_embedded``,
            ships inside the package and needs neither network nor files.
        data_dir: a folder or file to read the data from instead of the default location; what it must hold
            depends on the dataset (see :func:`dataset_info`).
        limit: keep only the first ``limit`` examples of each split (the first ``limit`` characters of a
            text); ``None`` keeps everything.

    Returns:
        The :class:`Dataset`, validated by :func:`validate_dataset`.

    Raises:
        UnknownNameError: ``name`` is not registered.
        DataError: the data is missing or malformed, or ``limit`` is not a positive integer.
        PluginError: a plugin's builder failed to import or did not return a :class:`Dataset`.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit must be a positive integer or None. Received: limit={limit!r}.")
    entry = datasets.resolve(name)
    builder = entry.load()
    if data_dir is not None:
        data_dir = os.path.expanduser(os.fspath(data_dir))
    dataset = builder(data_dir=data_dir)
    if not isinstance(dataset, Dataset):
        raise PluginError(
            f"Dataset {name!r} from distribution {entry.distribution} {entry.version} returned "
            f"{type(dataset).__name__}, not a kzoo.data.Dataset."
        )
    if limit is not None:
        if dataset.task == "text" and dataset.text is not None:
            dataset.text = dataset.text[:limit]
        elif dataset.task != "text":
            for split in ("x_train", "y_train", "x_test", "y_test"):
                array = getattr(dataset, split)
                if array is not None:
                    setattr(dataset, split, array[:limit])
    validate_dataset(dataset)
    return dataset


def dataset_of_path(data, data_dir=None, *, reader=None):
    """The ``(dataset, data_dir)`` that load ``--data``: a file or folder as the registered dataset ``reader``
    (the one whose builder reads the user's files for the model's task: ``sentiment``, ``fra_eng``,
    ``timemachine``) with the absolute path as its ``data_dir``. A registered name, and any path when there is no
    ``reader`` (an image folder, opened by the classification task), come back as they are.

    Raises:
        DataError: the path does not exist, or ``data_dir`` names other files as well.
    """
    if reader is None or not looks_like_path(data):
        return data, data_dir
    path = os.path.abspath(os.path.expanduser(os.fspath(data)))
    if not os.path.exists(path):
        raise DataError(f"No such file or folder: {data}. --data takes a registered dataset name (`kzoo datasets`) "
                        f"or the path of {dataset_info(reader)['data_dir'].split(';')[0]}.")
    if data_dir is not None:
        raise DataError(f"--data {data} names the files to read; --data-dir {data_dir} goes with a dataset name "
                        f"(--data {reader} --data-dir FILE). Pass one of them.")
    return reader, path

