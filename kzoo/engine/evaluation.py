"""Evaluating and predicting from a run folder or checkpoint (``kzoo evaluate``, ``kzoo predict``); run-folder files."""

import csv
import json
import os

import numpy as np

from kzoo.errors import CheckpointError, DataError
from kzoo.tasks.base import images_to_float, predict_proba
from kzoo.tasks.classification import classification_report


def plot_curves(metrics_csv, path):
    """Loss and accuracy (or perplexity), train vs validation, per epoch, from ``metrics.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(metrics_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    pairs = [("loss", "val_loss")] + [(k, f"val_{k}") for k in ("accuracy", "perplexity") if k in rows[0]]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 3.6))
    axes = np.atleast_1d(axes)
    for ax, (train_key, val_key) in zip(axes, pairs):
        for key, label in ((train_key, "train"), (val_key, "validation")):
            values = [float(r[key]) if r.get(key) not in (None, "", "nan") else np.nan for r in rows]
            if not np.all(np.isnan(values)):
                ax.plot(epochs, values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_title(train_key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_run_config(run_dir):
    import yaml

    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _run_dir_of(path):
    return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


def evaluate(run_or_checkpoint, *, data=None, data_dir=None, trust=False, batch_size=256, limit=0, backend=None,
             beam=1):
    """Score a run folder or ``.keras`` checkpoint on a dataset's test split (``kzoo evaluate``).

    Without ``data``, the dataset recorded in the run's ``config.yaml`` is used. A run of another task than
    classification is scored by its task (perplexity, pair accuracy, BLEU, ...; ``beam`` for the decoders).
    """
    from kzoo.backend import set_backend

    set_backend(backend)
    from kzoo.data import load_dataset
    from kzoo.engine.checkpoints import load_model

    if not os.path.exists(run_or_checkpoint):
        raise CheckpointError(f"No such run folder or checkpoint: {run_or_checkpoint}")
    config = read_run_config(_run_dir_of(run_or_checkpoint)) or {}
    data = data or config.get("data")
    if data is None:
        raise DataError("This checkpoint has no run config naming its dataset; pass --data NAME.")
    data_dir = data_dir if data_dir is not None else (config.get("data_dir") if data == config.get("data") else None)
    model = load_model(run_or_checkpoint, trust=trust, compile=False)
    if config.get("task_kind") not in (None, "classification"):
        from kzoo.engine.inference import evaluate_run

        report = evaluate_run(model, config, data=data, data_dir=data_dir, limit=limit, batch_size=batch_size,
                              beam=beam)
        report.update({"model": model.name, "data": data, "checkpoint": run_or_checkpoint,
                       "task": config["task_kind"]})
        return report
    dataset = load_dataset(data, data_dir=data_dir)
    x, y = images_to_float(dataset.x_test), np.asarray(dataset.y_test).astype("int64")
    if limit:
        x, y = x[:limit], y[:limit]
    _check_fits(model, x, dataset)
    report = classification_report(model, x, y, class_names=dataset.class_names, batch_size=batch_size)
    report.update({"model": model.name, "data": data, "checkpoint": run_or_checkpoint})
    return report


def _check_fits(model, x, dataset):
    expected = tuple(model.inputs[0].shape[1:])
    if tuple(x.shape[1:]) != expected:
        raise DataError(
            f"The model expects inputs of shape {expected}, but {dataset.name!r} has images of shape "
            f"{tuple(x.shape[1:])}. Evaluate on the dataset the model was trained on."
        )
    classes = int(model.outputs[0].shape[-1])
    if dataset.num_classes > classes:
        raise DataError(f"The model predicts {classes} classes, but {dataset.name!r} has {dataset.num_classes}.")


def load_image(path, input_shape):
    """Read a PNG/JPEG file as a float32 array shaped like the model input (grayscale/RGB, resized)."""
    from PIL import Image, UnidentifiedImageError

    height, width, channels = input_shape
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
            array = np.asarray(image, dtype="float32") / 255.0
    except FileNotFoundError:
        raise DataError(f"No such image file: {path}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path} is not a readable PNG/JPEG image ({exc}).") from None
    return array.reshape(height, width, channels)


def predict(checkpoint, images, *, top_k=3, trust=False, invert=None, backend=None):
    """Top-k classes for image files (``kzoo predict``); class names come from the run's dataset.

    Args:
        invert: invert grayscale images (dark digit on light paper -> MNIST's light on dark). ``None``
            inverts automatically when an image's border is mostly light and the model is grayscale.
    """
    from kzoo.backend import set_backend

    set_backend(backend)
    from kzoo.engine.checkpoints import load_model

    model = load_model(checkpoint, trust=trust, compile=False)
    input_shape = tuple(model.inputs[0].shape[1:])
    if len(input_shape) != 3:
        raise DataError(f"kzoo predict takes image models; {model.name} expects inputs of shape {input_shape}.")
    config = read_run_config(_run_dir_of(checkpoint)) or {}
    class_names = config.get("class_names")
    batch = []
    for path in images:
        array = load_image(path, input_shape)
        auto = input_shape[-1] == 1 and np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]]).mean() > 0.5
        if invert or (invert is None and auto):
            array = 1.0 - array
        batch.append(array)
    probs = predict_proba(model, np.stack(batch))
    results = []
    for path, row in zip(images, probs):
        order = np.argsort(row)[::-1][:top_k]
        results.append({"image": str(path), "top": [
            {"class": int(i), "name": class_names[i] if class_names and i < len(class_names) else str(i),
             "probability": round(float(row[i]), 6)} for i in order]})
    return results


def write_json(data, path):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)
