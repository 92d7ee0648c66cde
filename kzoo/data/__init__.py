"""Datasets: the registry of built-in and plugin datasets, loading, and checks before training.

A dataset is registered in the ``kzoo.datasets`` entry-point group and names a builder ``f(data_dir=None)``
that returns a :class:`Dataset`. Listing and describing read the module's ``SPECS`` literal without importing
it; importing this package imports numpy only, never keras or a framework::

    from kzoo.data import list_datasets, load_dataset
    list_datasets()                                   # ['cifar10', 'fashion_mnist', 'mnist', ...]
    ds = load_dataset("fashion_mnist", data_dir="~/data/fashion-mnist")
    ds.x_train.shape, ds.input_shape, ds.num_classes  # (60000, 28, 28), (28, 28, 1), 10
"""

from __future__ import annotations

from kzoo.data.dataset import TASKS, Dataset, validate_dataset
from kzoo.data.registry import DEFAULT_DATASET, dataset_info, list_datasets, load_dataset

__all__ = ["DEFAULT_DATASET", "TASKS", "Dataset", "dataset_info", "list_datasets", "load_dataset",
           "validate_dataset"]
