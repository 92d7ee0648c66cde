"""The interface the trainer calls on a task, and what every task shares.

A task (one object per run) supplies training defaults over the model's recipe, prepares the data, says how the
model is built, names the loss and metrics, evaluates on the held-out test split and draws its plots. Tasks know
Keras, never the backend: the engine hands them its forward pass (``forward``: a model -> a function of a NumPy
batch that returns the model's outputs as float32 NumPy, :func:`kzoo.engine.forward.inference_forward`).
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FitData:
    """What ``keras.Model.fit`` gets: arrays (``x``, ``y``) or a ``keras.utils.PyDataset`` (``x``, ``y=None``).

    ``samples`` is the number of examples per epoch (for the progress bar and the learning-rate schedule).
    """

    x: object
    y: object
    validation: object
    samples: int


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
    extra: dict = field(default_factory=dict)  # plain values, recorded in the run's config.yaml
    test_split: str = "test"  # what the test metrics are measured on (says what --limit cut, if anything)


def images_to_float(x):
    """uint8 or float images -> float32 in [0, 1] with a channel axis (N, H, W, C)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.dtype == np.uint8:
        return x.astype("float32") / 255.0
    return x.astype("float32")


def predict_proba(model, x, batch_size=256, *, forward):
    """The model's outputs on ``x`` as float32 numpy, computed by ``forward(model)`` ``batch_size`` examples at a
    time."""
    if is_streamed(x):
        return predict_stream(model, x, forward=forward)[0]
    outputs_of = forward(model)
    outputs = [outputs_of(x[start:start + batch_size]) for start in range(0, len(x), batch_size)]
    if len(outputs) == 1:
        return outputs[0]
    return np.concatenate(outputs) if outputs else np.zeros((0,), "float32")


def is_streamed(x):
    """Whether ``x`` is a ``keras.utils.PyDataset`` of batches rather than an array."""
    import keras

    return isinstance(x, keras.utils.PyDataset)


def predict_stream(model, batches, *, forward):
    """Probabilities and labels of every ``(x, y)`` batch of a ``PyDataset`` (decoded by its workers), computed by
    ``forward(model)``."""
    from kzoo.data.pipeline import iterate

    outputs_of = forward(model)
    probs, labels = [], []
    for x, y, *_ in iterate(batches):
        probs.append(outputs_of(x))
        labels.append(np.asarray(y))
    if not probs:
        return np.zeros((0,), "float32"), np.zeros((0,), "int64")
    return np.concatenate(probs), np.concatenate(labels)


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


class Task:
    """The base of every task: classification defaults that a task overrides where it differs.

    Attributes:
        name: the task name (:data:`kzoo.tasks.names.RUN_TASKS`), recorded as ``task_kind`` in a run's config.
        monitor: the epoch log that picks the best checkpoint (lower is better for losses and perplexity).
        recipe: training defaults this task lays over the model's own recipe (explicit options still win).
        file_dataset: the registered dataset whose builder reads ``--data FILE`` (or a folder of texts) for this
            task, given the path as its ``data_dir``; ``None``: ``--data`` names a dataset (or, for a classifier,
            a folder of images).
    """

    name = None
    monitor = "val_loss"
    recipe = {}
    file_dataset = None

    def prepare(self, dataset, config):
        """Turn a loaded :class:`kzoo.data.Dataset` into a :class:`Prepared`."""
        raise NotImplementedError

    def build_kwargs(self, prepared, config):
        """Keyword arguments of ``kzoo.create_model`` (input shape, classes and the user's model options)."""
        return {**config.options, "input_shape": prepared.input_shape, "num_classes": prepared.num_classes}

    def fit_data(self, prepared, config, initial_epoch=0):
        """The training and validation data, as :class:`FitData`; ``initial_epoch`` is where a resumed run starts.

        Data drawn afresh each epoch continues the uninterrupted run's sequence from ``initial_epoch``.
        """
        raise NotImplementedError

    def loss(self, name):
        raise NotImplementedError

    def metrics(self, loss):
        return []

    def evaluate(self, model, x, y, *, forward, class_names=None, batch_size=256, loss="sparse_cce"):
        """The task's report on the test split; ``forward`` computes a model's outputs (see the module doc)."""
        raise NotImplementedError

    def save_plots(self, report, run_dir):
        """Write the task's plots of the final evaluation into the run folder (none by default)."""
