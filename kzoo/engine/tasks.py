"""Tasks: how a dataset becomes model inputs and targets, which loss fits, and how a model is scored.

The trainer is task-agnostic; a task object prepares arrays, names the loss and metrics, and evaluates.
"""

from dataclasses import dataclass, field

import numpy as np

from kzoo.errors import DataError


@dataclass
class Prepared:
    """Arrays ready for training, plus what the model is built for."""

    x_train: object
    y_train: object
    x_val: object
    y_val: object
    x_test: object
    y_test: object
    input_shape: tuple
    num_classes: int
    class_names: list = None
    extra: dict = field(default_factory=dict)


def images_to_float(x):
    """uint8 or float images -> float32 in [0, 1] with a channel axis (N, H, W, C)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.dtype == np.uint8:
        return x.astype("float32") / 255.0
    return x.astype("float32")


def split_validation(x, y, val_split, seed):
    """Hold out the last ``val_split`` of a seeded shuffle of the training set."""
    if not val_split:
        return x, y, None, None
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_val = max(1, int(round(len(y) * val_split)))
    train_idx, val_idx = order[:-n_val], order[-n_val:]
    pick = (lambda a, i: [p[i] for p in a]) if isinstance(x, (list, tuple)) else (lambda a, i: a[i])
    return pick(x, train_idx), y[train_idx], pick(x, val_idx), y[val_idx]


class ClassificationTask:
    """Image or sequence classification with integer labels (sequence models read images row by row)."""

    name = "classification"
    monitor = "val_accuracy"

    def prepare(self, dataset, config):
        if getattr(dataset, "task", "image_classification") != "image_classification":
            raise DataError(f"Dataset {dataset.name!r} holds {dataset.task} data; a classifier needs labelled images.")
        x_train, x_test = images_to_float(dataset.x_train), images_to_float(dataset.x_test)
        y_train, y_test = np.asarray(dataset.y_train).astype("int64"), np.asarray(dataset.y_test).astype("int64")
        if config.limit:
            x_train, y_train = x_train[: config.limit], y_train[: config.limit]
            x_test, y_test = x_test[: config.limit], y_test[: config.limit]
        x_train, y_train, x_val, y_val = split_validation(x_train, y_train, config.val_split, config.seed)
        return Prepared(x_train, y_train, x_val, y_val, x_test, y_test, tuple(x_train.shape[1:]),
                        int(dataset.num_classes), list(dataset.class_names) if dataset.class_names else None)

    def targets(self, y, num_classes, loss):
        """One-hot targets for losses that need them (cce, mse, mae, bce), integer labels otherwise."""
        if loss in ("cce", "mse", "mae", "bce"):
            return np.eye(num_classes, dtype="float32")[y]
        return y

    def loss(self, name):
        import keras

        return {
            "sparse_cce": keras.losses.SparseCategoricalCrossentropy(),
            "cce": keras.losses.CategoricalCrossentropy(),
            "mse": keras.losses.MeanSquaredError(),
            "mae": keras.losses.MeanAbsoluteError(),
            "bce": keras.losses.BinaryCrossentropy(),
        }[name]

    def metrics(self, loss):
        import keras

        if loss == "sparse_cce":
            return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        return [keras.metrics.CategoricalAccuracy(name="accuracy")]

    def evaluate(self, model, x, y, *, class_names=None, batch_size=256, loss="sparse_cce"):
        from kzoo.engine.evaluation import classification_report

        return classification_report(model, x, y, class_names=class_names, batch_size=batch_size)


TASKS = {
    "image_classification": ClassificationTask,
    "sequence_classification": ClassificationTask,
}


def task_for(info, config):
    """The task object for a model (its spec's ``task``) and the user's ``--task``."""
    name = config.task or info.get("task", "image_classification")
    if name not in TASKS:
        raise DataError(f"kzoo cannot train task {name!r} yet. Known tasks: {', '.join(sorted(TASKS))}.")
    return TASKS[name]()
