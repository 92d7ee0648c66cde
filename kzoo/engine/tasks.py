"""Tasks: how a dataset becomes model inputs and targets, which loss fits, and how a model is scored.

The trainer is task-agnostic; a task object (one per run) supplies training defaults over the model's recipe,
prepares the data, says how the model is built, names the loss and metrics, evaluates and draws its plots:

* ``classification``: images, or images read row by row by sequence models (:class:`ClassificationTask`);
* ``lm``: a character language model over a text (:class:`LanguageModelTask`);
* ``metric_learning``: a Siamese network on pairs of images (:class:`SiameseTask`).
"""

import os
from dataclasses import dataclass, field

import numpy as np

from kzoo.errors import DataError, OptionError


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


class Task:
    """The base of every task: classification defaults that a task overrides where it differs.

    Attributes:
        name: the task name (``--task``, a model card's ``task``), recorded as ``task_kind`` in a run's config.
        monitor: the epoch log that picks the best checkpoint (lower is better for losses and perplexity).
        recipe: training defaults this task lays over the model's own recipe (explicit options still win).
    """

    name = None
    monitor = "val_loss"
    recipe = {}

    def prepare(self, dataset, config):
        """Turn a loaded :class:`kzoo.data.Dataset` into a :class:`Prepared`."""
        raise NotImplementedError

    def build_kwargs(self, prepared, config):
        """Keyword arguments of ``kzoo.create_model`` (input shape, classes and the user's model options)."""
        return {**config.options, "input_shape": prepared.input_shape, "num_classes": prepared.num_classes}

    def fit_data(self, prepared, config):
        """The training and validation data, as :class:`FitData`."""
        raise NotImplementedError

    def loss(self, name):
        raise NotImplementedError

    def metrics(self, loss):
        return []

    def evaluate(self, model, x, y, *, class_names=None, batch_size=256, loss="sparse_cce"):
        raise NotImplementedError

    def save_plots(self, report, run_dir):
        """Write the task's plots of the final evaluation into the run folder (none by default)."""


class ClassificationTask(Task):
    """Image or sequence classification with integer labels (sequence models read images row by row)."""

    name = "classification"
    monitor = "val_accuracy"

    def prepare(self, dataset, config):
        from kzoo.data.image_folder import ImageFolder

        if isinstance(dataset, ImageFolder):
            return self._prepare_folder(dataset, config)
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

    def _prepare_folder(self, folder, config):
        """Streamed batches of a folder's files (:mod:`kzoo.data.pipeline`): nothing is decoded up front."""
        from kzoo.data.pipeline import DecodedCache, ImageBatches

        splits = {name: folder.split(name) for name in ("train", "val", "test")}
        if config.limit:
            splits = {name: files.head(config.limit) for name, files in splits.items()}
        cache = None
        if config.cache != "none":
            every = [p for files in splits.values() for p in files.paths]
            cache = DecodedCache(config.cache, every, folder.image_size, folder.channels, root=folder.root)
        targets = None
        if config.loss in ("cce", "mse", "mae", "bce"):
            targets = lambda y: self.targets(y, folder.num_classes, config.loss)  # noqa: E731

        def batches(name, **kwargs):
            if not len(splits[name]):
                return None
            return ImageBatches(splits[name], folder.image_size, folder.channels, config.batch_size, cache=cache,
                                strict=config.strict_data, seed=config.seed, **kwargs)

        train = batches("train", shuffle=True, augment=bool(config.augment), flip=True, targets=targets)
        val = batches("val", targets=targets)
        extra = {"data_folder": {"root": folder.root, "layout": folder.layout,
                                 "files": {name: len(files) for name, files in splits.items()},
                                 "image_size": list(folder.image_size), "channels": folder.channels,
                                 "skipped_images": len(folder.skipped)}}
        return Prepared(train, None, val, None, batches("test"), None, folder.input_shape, folder.num_classes,
                        list(folder.class_names), extra)

    def fit_data(self, prepared, config):
        if prepared.y_train is None:  # streamed batches carry their own targets
            return FitData(prepared.x_train, None, prepared.x_val, prepared.x_train.samples)
        y_train = self.targets(prepared.y_train, prepared.num_classes, config.loss)
        validation = None
        if prepared.x_val is not None:
            validation = (prepared.x_val, self.targets(prepared.y_val, prepared.num_classes, config.loss))
        return FitData(prepared.x_train, y_train, validation, len(prepared.y_train))

    def targets(self, y, num_classes, loss):
        """One-hot targets for losses that need them (cce, mse, mae, bce), integer labels otherwise."""
        if loss in ("cce", "mse", "mae", "bce"):
            return np.eye(num_classes, dtype="float32")[y]
        return y

    def loss(self, name):
        import keras

        losses = {
            "sparse_cce": keras.losses.SparseCategoricalCrossentropy,
            "cce": keras.losses.CategoricalCrossentropy,
            "mse": keras.losses.MeanSquaredError,
            "mae": keras.losses.MeanAbsoluteError,
            "bce": keras.losses.BinaryCrossentropy,
        }
        if name not in losses:
            raise OptionError(f"A classifier trains with one of {', '.join(losses)}. Received: loss={name!r}.")
        return losses[name]()

    def metrics(self, loss):
        import keras

        if loss == "sparse_cce":
            return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        return [keras.metrics.CategoricalAccuracy(name="accuracy")]

    def evaluate(self, model, x, y, *, class_names=None, batch_size=256, loss="sparse_cce"):
        from kzoo.engine.evaluation import classification_report

        return classification_report(model, x, y, class_names=class_names, batch_size=batch_size)

    def save_plots(self, report, run_dir):
        from kzoo.engine.evaluation import plot_confusion_matrix

        plot_confusion_matrix(report, os.path.join(run_dir, "confusion_matrix.png"))


class LanguageModelTask(Task):
    """A character language model (the notes' synchronous many-to-many RNN) over a text dataset.

    The text becomes token ids (:class:`kzoo.engine.text.CharVocab`, ``--vocab``); the last ``val_split`` of it
    (default 10%) is held out for the per-epoch ``val_perplexity`` and the final evaluation, which also
    writes a generated sample. Each training epoch cuts the rest into ``seq_len``-token windows from a fresh
    random offset, in a fresh random order; the target of each window is the window shifted by one token.
    """

    name = "lm"
    monitor = "val_perplexity"
    recipe = {"data": "timemachine", "seq_len": 64, "vocab": "letters", "clipnorm": 1.0, "epochs": 12,
              "batch_size": 32, "lr": 0.005, "schedule": "constant",
              "options": {"units": 256, "num_layers": 1}}
    sample_prefix = "time traveller"

    def __init__(self):
        self.vocab = None

    def prepare(self, dataset, config):
        from kzoo.engine.text import CharVocab

        if dataset.task != "text":
            raise DataError(f"A language model trains on text; dataset {dataset.name!r} holds {dataset.task} "
                            f"data. Use --data timemachine or --data-dir FILE.txt.")
        if not config.val_split:
            raise OptionError("A language model needs held-out text for its perplexity: val_split must be > 0. "
                              f"Received: val_split={config.val_split!r}.")
        text = dataset.text[: config.limit] if config.limit else dataset.text
        split = int(len(text) * (1 - config.val_split))
        self.vocab = CharVocab.build(config.vocab, text[:split])
        train, held_out = self.vocab.encode(text[:split]), self.vocab.encode(text[split:])
        for part, ids in (("training", train), ("held-out", held_out)):
            if len(ids) < 2 * config.seq_len + 1:
                raise DataError(f"The {part} text of {dataset.name!r} has {len(ids)} characters; seq_len="
                                f"{config.seq_len} needs at least {2 * config.seq_len + 1}. Use more text or a "
                                f"smaller --seq-len.")
        x_val, y_val = windows(held_out, config.seq_len)
        return Prepared(train, None, x_val, y_val, x_val, y_val, (config.seq_len,), None,
                        extra={"vocab_kind": self.vocab.kind, "vocab_tokens": self.vocab.tokens})

    def build_kwargs(self, prepared, config):
        from kzoo.registry import model_info

        head = model_info(config.model).get("options", {}).get("head", {})
        if "lm" not in (head.get("choices") or []):
            raise OptionError(f"--task lm needs a sequence model with a language-model head (rnn, gru, lstm). "
                              f"Received: {config.model}.")
        return {**config.options, "input_shape": prepared.input_shape, "num_classes": None, "head": "lm",
                "vocab_size": len(self.vocab)}

    def fit_data(self, prepared, config):
        from kzoo.engine.sequences import WindowBatches

        batches = WindowBatches(prepared.x_train, config.seq_len, config.batch_size, seed=config.seed)
        return FitData(batches, None, (prepared.x_val, prepared.y_val), batches.samples)

    def loss(self, name):
        import keras

        if name != "sparse_cce":
            raise OptionError(f"A language model trains with the sparse categorical cross-entropy. "
                              f"Received: loss={name!r}.")
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self, loss):
        from kzoo.layers import Perplexity

        return [Perplexity()]

    def evaluate(self, model, x, y, *, class_names=None, batch_size=256, loss="sparse_cce"):
        """Held-out loss and perplexity, and a 200-character sample generated from ``sample_prefix``."""
        from kzoo.engine.evaluation import predict_proba
        from kzoo.engine.generation import sample

        probs = predict_proba(model, x, batch_size)
        picked = np.take_along_axis(probs, np.asarray(y)[..., None].astype("int64"), axis=-1)
        loss_value = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
        prefix = self.sample_prefix if self.vocab.kind == "letters" else self.vocab.decode(x[0][:16])
        text = sample(model, self.vocab, prefix, length=200, temperature=1.0, seed=0, window=x.shape[1])
        return {"samples": int(y.size), "loss": round(loss_value, 6), "perplexity": round(float(np.exp(loss_value)), 4),
                "sample": {"prefix": prefix, "temperature": 1.0, "text": text}}


class SiameseTask(Task):
    """Metric learning: a Siamese network learns from pairs of images whether they show the same class.

    Training pairs are drawn afresh every epoch, half similar (label 1) and half dissimilar (label 0)
    (:class:`kzoo.engine.sequences.PairBatches`); validation uses fixed seeded pairs of the held-out images.
    The final evaluation scores ``test_pairs`` fixed balanced test pairs by the pair verification accuracy at
    the best distance threshold, and plots the test set's embeddings in 2-D (PCA) as ``embedding.png``.
    """

    name = "metric_learning"
    monitor = "val_loss"
    test_pairs = 10_000

    def __init__(self):
        self.margin = 1.0
        self.embedding = None

    def prepare(self, dataset, config):
        if dataset.task != "image_classification":
            raise DataError(f"A Siamese network learns from labelled images; dataset {dataset.name!r} holds "
                            f"{dataset.task} data.")
        if config.augment:
            raise OptionError("--augment applies to single-image models; a Siamese network takes pairs.")
        prepared = ClassificationTask().prepare(dataset, config)
        self.margin = config.margin
        prepared.num_classes = None  # the model outputs a distance, not classes
        return prepared

    def fit_data(self, prepared, config):
        from kzoo.engine.sequences import PairBatches

        batches = PairBatches(prepared.x_train, prepared.y_train, config.batch_size, seed=config.seed)
        validation = None
        if prepared.x_val is not None:
            left, right, same = make_pairs(prepared.y_val, len(prepared.y_val), np.random.default_rng(config.seed))
            validation = ({"left": prepared.x_val[left], "right": prepared.x_val[right]}, same)
        return FitData(batches, None, validation, batches.samples)

    def loss(self, name):
        from kzoo.layers import ContrastiveLoss

        if name != "contrastive":
            raise OptionError(f"A Siamese network trains with --loss contrastive. Received: loss={name!r}.")
        return ContrastiveLoss(margin=self.margin)

    def evaluate(self, model, x, y, *, class_names=None, batch_size=256, loss="contrastive"):
        """Pair verification accuracy at the best threshold on fixed balanced test pairs, and the embedding."""
        from kzoo.engine.evaluation import predict_proba

        y = np.asarray(y).astype("int64")
        left, right, same = make_pairs(y, min(self.test_pairs, 2 * len(y)), np.random.default_rng(1234))
        encoder = model.get_layer("encoder")
        embeddings = predict_proba(encoder, x, batch_size)
        distance = np.sqrt(np.maximum(np.sum((embeddings[left] - embeddings[right]) ** 2, axis=-1), 1e-7))
        accuracy, threshold = best_threshold(distance, same)
        contrastive = same * distance ** 2 + (1 - same) * np.maximum(self.margin - distance, 0) ** 2
        self.embedding = (pca_2d(embeddings), y, class_names)
        return {"samples": int(len(same)), "loss": round(float(contrastive.mean()), 6),
                "pair_accuracy": round(accuracy, 6), "threshold": round(threshold, 6),
                "mean_distance_similar": round(float(distance[same == 1].mean()), 6),
                "mean_distance_dissimilar": round(float(distance[same == 0].mean()), 6)}

    def save_plots(self, report, run_dir):
        if self.embedding is not None:
            plot_embedding(*self.embedding, os.path.join(run_dir, "embedding.png"),
                           title=f"test embeddings (PCA), pair accuracy {report['pair_accuracy']:.4f}")


def windows(ids, seq_len, offset=0):
    """Non-overlapping ``seq_len`` windows of token ids from ``offset`` and their targets, shifted by one.

    Returns:
        ``(x, y)``, both int32 ``(N, seq_len)``.
    """
    count = (len(ids) - 1 - offset) // seq_len
    starts = offset + np.arange(count) * seq_len
    index = starts[:, None] + np.arange(seq_len)[None, :]
    return ids[index].astype("int32"), ids[index + 1].astype("int32")


def make_pairs(labels, count, rng):
    """Balanced random pairs of example indices: the first half similar (same label), the rest dissimilar.

    Args:
        labels: integer class labels ``(N,)``; at least two classes.
        count: the number of pairs (an odd count gets one more similar pair).
        rng: a ``numpy.random.Generator``.

    Returns:
        ``(left, right, same)``: index arrays and float32 labels (1 similar, 0 dissimilar), in a random order.
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise DataError(f"Pairs need at least two classes. Received labels of {len(classes)} class(es).")
    members = [np.flatnonzero(labels == c) for c in classes]
    class_of = np.searchsorted(classes, labels)
    left = rng.integers(0, len(labels), count)
    same = (np.arange(count) < (count + 1) // 2).astype("float32")
    partner_class = class_of[left].copy()
    dissimilar = same == 0
    partner_class[dissimilar] = (partner_class[dissimilar] + rng.integers(1, len(classes), dissimilar.sum())) \
        % len(classes)
    right = np.empty(count, dtype="int64")
    for c, idx in enumerate(members):
        where = np.flatnonzero(partner_class == c)
        right[where] = idx[rng.integers(0, len(idx), len(where))]
    order = rng.permutation(count)
    return left[order], right[order], same[order]


def best_threshold(distance, same):
    """The distance threshold (similar when ``distance <= threshold``) that classifies most pairs correctly.

    Returns:
        ``(accuracy, threshold)``; the threshold lies midway between two neighbouring distances.
    """
    order = np.argsort(distance, kind="stable")
    d, s = distance[order], same[order]
    # predicting "similar" for the first k pairs: correct = similar among them + dissimilar after them
    similar_before = np.concatenate([[0], np.cumsum(s)])
    dissimilar_after = (1 - s).sum() - np.concatenate([[0], np.cumsum(1 - s)])
    correct = similar_before + dissimilar_after
    k = int(np.argmax(correct))
    bounds = np.concatenate([[d[0] - 1e-6], d, [d[-1] + 1e-6]])
    threshold = float((bounds[k] + bounds[k + 1]) / 2)
    return float(correct[k] / len(d)), threshold


def pca_2d(points):
    """Project points ``(N, D)`` on their two principal axes (numpy SVD); ``D == 1`` gets a zero second axis."""
    centred = points - points.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ components[:2].T
    if projected.shape[1] < 2:
        projected = np.pad(projected, ((0, 0), (0, 2 - projected.shape[1])))
    return projected


def plot_embedding(points, labels, class_names, path, title="embeddings"):
    """A 2-D scatter plot of embeddings, one colour per class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 6))
    cmap = plt.get_cmap("tab10" if labels.max() < 10 else "tab20")
    for c in np.unique(labels):
        mask = labels == c
        name = class_names[c] if class_names and c < len(class_names) else str(c)
        ax.scatter(points[mask, 0], points[mask, 1], s=3, alpha=0.6, color=cmap(int(c) % cmap.N), label=name)
    ax.set_title(title)
    ax.legend(markerscale=4, fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


TASKS = {
    "image_classification": ClassificationTask,
    "sequence_classification": ClassificationTask,
    "lm": LanguageModelTask,
    "metric_learning": SiameseTask,
}


def task_name(info, task=None, options=None):
    """The task a run trains: ``--task``, else ``lm`` for ``-o head=lm``, else the model card's ``task``."""
    if task:
        return task
    if (options or {}).get("head") == "lm":
        return "lm"
    return info.get("task", "image_classification")


def recipe_for(info, task=None, options=None):
    """The model's recipe with the task's defaults laid over it when the task is not the model's own."""
    recipe = dict(info.get("recipe") or {})
    name = task_name(info, task, options)
    if name != info.get("task") and name in TASKS:
        extra = TASKS[name].recipe
        recipe.update({k: v for k, v in extra.items() if k != "options"})
        own = info.get("options") or {}  # a model without these options is refused later, with a clear message
        recipe["options"] = {**recipe.get("options", {}),
                             **{k: v for k, v in extra.get("options", {}).items() if k in own}}
    return recipe


def task_for(info, config):
    """The task object for a model (its spec's ``task``) and the user's ``--task``."""
    name = task_name(info, config.task, config.options)
    if name not in TASKS:
        raise DataError(f"kzoo cannot train task {name!r} yet. Known tasks: {', '.join(sorted(TASKS))}.")
    return TASKS[name]()
