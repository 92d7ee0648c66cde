"""Classification: images, or images read row by row by sequence models, with integer labels.

The validation split is a seeded ``val_split`` of the training images; the dataset's own test split is used for
nothing but the final evaluation. ``--limit N`` keeps the first ``N`` training images (validation included) and
the first ``N`` test images, and the report's ``split`` says so.

The final evaluation reports loss, accuracy, per-class precision/recall/F1 and the confusion matrix
(``confusion_matrix.png``).
"""

import os

import numpy as np

from kzoo.errors import DataError, OptionError
from kzoo.tasks import names
from kzoo.tasks.base import (FitData, Prepared, Task, images_to_float, is_streamed, predict_proba, predict_stream,
                             split_validation)


class ClassificationTask(Task):
    """Image or sequence classification with integer labels (sequence models read images row by row)."""

    name = names.CLASSIFICATION
    monitor = "val_accuracy"

    def prepare(self, dataset, config):
        from kzoo.data.image_folder import ImageFolder

        if isinstance(dataset, ImageFolder):
            return self._prepare_folder(dataset, config)
        if getattr(dataset, "task", names.IMAGE_CLASSIFICATION) != names.IMAGE_CLASSIFICATION:
            raise DataError(f"Dataset {dataset.name!r} holds {dataset.task} data; a classifier needs labelled images.")
        x_train, x_test = images_to_float(dataset.x_train), images_to_float(dataset.x_test)
        y_train, y_test = np.asarray(dataset.y_train).astype("int64"), np.asarray(dataset.y_test).astype("int64")
        test_split = "test"
        if config.limit:
            x_train, y_train = x_train[: config.limit], y_train[: config.limit]
            if len(y_test) > config.limit:  # a quick run is scored quickly, and its report says so
                test_split = f"test: the first {config.limit} of {len(y_test)} examples (--limit {config.limit})"
                x_test, y_test = x_test[: config.limit], y_test[: config.limit]
        x_train, y_train, x_val, y_val = split_validation(x_train, y_train, config.val_split, config.seed)
        return Prepared(x_train, y_train, x_val, y_val, x_test, y_test, tuple(x_train.shape[1:]),
                        int(dataset.num_classes), list(dataset.class_names) if dataset.class_names else None,
                        test_split=test_split)

    def _prepare_folder(self, folder, config):
        """Streamed batches of a folder's files (:mod:`kzoo.data.pipeline`): nothing is decoded up front.

        ``--limit N`` keeps the first ``N`` training files only; validation and test keep every file.
        """
        from kzoo.data.pipeline import DecodedCache, ImageBatches, resolve_cache

        splits = {name: folder.split(name) for name in ("train", "val", "test")}
        if config.limit:
            splits["train"] = splits["train"].head(config.limit)
        every = [p for files in splits.values() for p in files.paths]
        cache_kind, decoded_bytes = resolve_cache(config.cache, len(set(every)), folder.image_size, folder.channels)
        cache = None
        if cache_kind != "none":
            cache = DecodedCache(cache_kind, every, folder.image_size, folder.channels, root=folder.root)
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
                                 "skipped_images": len(folder.skipped),
                                 "cache": cache_kind, "decoded_mb": round(decoded_bytes / 2**20, 1)}}
        return Prepared(train, None, val, None, batches("test"), None, folder.input_shape, folder.num_classes,
                        list(folder.class_names), extra)

    def fit_data(self, prepared, config, initial_epoch=0):
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

    def evaluate(self, model, x, y, *, forward, class_names=None, batch_size=256, loss="sparse_cce"):
        return classification_report(model, x, y, forward=forward, class_names=class_names, batch_size=batch_size)

    def save_plots(self, report, run_dir):
        plot_confusion_matrix(report, os.path.join(run_dir, "confusion_matrix.png"))


def classification_report(model, x, y, *, forward, class_names=None, batch_size=256):
    """Loss, accuracy, per-class precision/recall/F1 and the confusion matrix of a classifier.

    ``x`` is an array of images with labels ``y``, or a ``PyDataset`` of ``(images, labels)`` batches
    (``y=None``); ``forward(model)`` computes the probabilities (:mod:`kzoo.tasks.base`).
    """
    if is_streamed(x):
        probs, y = predict_stream(model, x, forward=forward)
    else:
        probs = predict_proba(model, x, batch_size, forward=forward)
    return report_from_probabilities(probs, y, class_names=class_names)


def report_from_probabilities(probs, y, *, class_names=None):
    """:func:`classification_report` from predicted class probabilities ``(N, classes)`` (any runtime's)."""
    y = np.asarray(y).astype("int64")
    num_classes = probs.shape[-1]
    predicted = probs.argmax(axis=-1)
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], eps, 1.0))))
    matrix = np.zeros((num_classes, num_classes), dtype="int64")
    np.add.at(matrix, (y, predicted), 1)
    true_pos = np.diag(matrix).astype("float64")
    precision = np.divide(true_pos, matrix.sum(axis=0), out=np.zeros(num_classes), where=matrix.sum(axis=0) > 0)
    recall = np.divide(true_pos, matrix.sum(axis=1), out=np.zeros(num_classes), where=matrix.sum(axis=1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(num_classes), where=(precision + recall) > 0)
    names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
    per_class = [
        {"class": names[i], "precision": round(float(precision[i]), 4), "recall": round(float(recall[i]), 4),
         "f1": round(float(f1[i]), 4), "support": int(matrix[i].sum())}
        for i in range(num_classes)
    ]
    return {
        "samples": int(len(y)),
        "loss": round(loss, 6),
        "accuracy": round(float((predicted == y).mean()) if len(y) else 0.0, 6),
        "macro_f1": round(float(f1.mean()), 6),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "class_names": names,
    }


def plot_confusion_matrix(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(report["confusion_matrix"])
    names = report["class_names"]
    size = max(5, 0.55 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix (accuracy {report['accuracy']:.4f})")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                color="white" if value > threshold else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
