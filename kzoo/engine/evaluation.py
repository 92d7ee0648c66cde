"""Evaluating and predicting from a run folder or checkpoint (``kzoo evaluate``, ``kzoo predict``); run-folder files."""

import csv
import json
import os

import numpy as np

from kzoo.data.image_folder import as_model_input, load_image
from kzoo.engine.forward import inference_forward
from kzoo.engine.runs import read_run_config, run_dir_of
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
            values = [float(r[key]) if r.get(key) not in (None, "", "nan", "NA") else np.nan for r in rows]  # NA: CSVLogger's blank
            if not np.all(np.isnan(values)):
                ax.plot(epochs, values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_title(train_key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def evaluate(run_or_checkpoint, *, data=None, data_dir=None, trust=False, batch_size=256, limit=0, backend=None,
             beam=1, threads=None):
    """Score a run folder or ``.keras`` checkpoint on a dataset's test split (``kzoo evaluate``).

    Without ``data``, the dataset recorded in the run's ``config.yaml`` is used; a path is read as the run's
    task reads ``kzoo train --data PATH`` (images, labelled texts, sentence pairs, a text). A run of another
    task than classification is scored by its task (perplexity, pair accuracy, BLEU, ...; ``beam`` for the
    decoders).
    ``threads``: the backend's intra-op threads (default: :func:`kzoo.backend.choose_threads`).
    """
    from kzoo.backend import set_backend, use_threads

    use_threads(set_backend(backend), threads)
    from kzoo.data import load_dataset
    from kzoo.engine.checkpoints import load_model

    if not os.path.exists(run_or_checkpoint):
        raise CheckpointError(f"No such run folder or checkpoint: {run_or_checkpoint}")
    config = read_run_config(run_dir_of(run_or_checkpoint)) or {}
    data = data or config.get("data")
    if config.get("task_kind") not in (None, "classification"):  # --data FILE, read as the run's task reads it
        from kzoo.data.registry import dataset_of_path
        from kzoo.tasks import task_class

        data, data_dir = dataset_of_path(data, data_dir, reader=task_class(config["task_kind"]).file_dataset)
    folder = _test_folder(run_dir_of(run_or_checkpoint), data, config)
    if folder is not None:
        return _evaluate_folder(run_or_checkpoint, folder, data, trust=trust, batch_size=batch_size, limit=limit)
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
    if getattr(dataset, "task", "image_classification") != "image_classification":
        raise DataError(f"Dataset {data!r} holds {dataset.task} data; kzoo evaluate scores classifiers on labelled "
                        f"images (a language model's run reports its perplexity in metrics.json).")
    x, y = images_to_float(dataset.x_test), np.asarray(dataset.y_test).astype("int64")
    if limit:
        x, y = x[:limit], y[:limit]
    _check_fits(model, x, dataset)
    report = classification_report(model, x, y, forward=inference_forward, class_names=dataset.class_names,
                                   batch_size=batch_size)
    report.update({"model": model.name, "data": data, "checkpoint": run_or_checkpoint})
    return report


def _test_folder(run_dir, data, config):
    """The image folder to test on: the run's recorded test files, or the test split of ``--data PATH``."""
    from kzoo.data import image_folder
    from kzoo.data.registry import looks_like_path

    if data is None or not looks_like_path(data):
        return None
    record = image_folder.load_file_lists(run_dir)
    if record is not None and data == config.get("data"):
        return image_folder.read_file_lists(record)
    recorded = config.get("data_folder") or {}
    return image_folder.open_image_folder(
        data, val_split=config.get("val_split", 0.1) or 0.0, test_split=config.get("test_split", 0.1) or 0.0,
        seed=config.get("seed", 0) or 0, image_size=recorded.get("image_size"), channels=recorded.get("channels"))


def _evaluate_folder(run_or_checkpoint, folder, data, *, trust, batch_size, limit):
    from kzoo.data.pipeline import ImageBatches
    from kzoo.engine.checkpoints import load_model

    model = load_model(run_or_checkpoint, trust=trust, compile=False)
    expected = tuple(model.inputs[0].shape[1:])
    if expected != folder.input_shape:
        folder.image_size, folder.channels = expected[:2], expected[2]  # bring the images to the model's input
    classes = int(model.outputs[0].shape[-1])
    if folder.num_classes > classes:
        raise DataError(f"The model predicts {classes} classes, but {folder.root} has {folder.num_classes}.")
    files = folder.test.head(limit) if limit else folder.test
    if not len(files):
        raise DataError(f"{folder.root} has no test images; train with --test-split > 0 or add a test/ folder.")
    batches = ImageBatches(files, folder.image_size, folder.channels, batch_size)
    report = classification_report(model, batches, None, forward=inference_forward, class_names=folder.class_names)
    report.update({"model": model.name, "data": data, "checkpoint": run_or_checkpoint,
                   "skipped_images": len(batches.skipped)})
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


def predict(checkpoint, images, *, top_k=3, trust=False, invert=None, backend=None, batch_size=64, output=None,
            threads=None):
    """Top-k classes for image files, folders and globs (``kzoo predict``); class names come from the run.

    Args:
        images: image files, folders (every image under them, sorted) and glob patterns (``"shots/*.jpg"``,
            ``"**"`` recursive).
        invert: invert grayscale images (dark digit on light paper -> MNIST's light on dark). ``None``
            inverts automatically when an image's border is mostly light and the model is grayscale, except
            for a model trained on an image folder (its images are taken as they are).
        batch_size: images decoded and classified at a time.
        output: a ``.csv`` file to write, one row per image: path, then class and probability of each of the
            top-k guesses.
        threads: the backend's intra-op threads (default: :func:`kzoo.backend.choose_threads`).
    """
    from kzoo.backend import set_backend, use_threads

    use_threads(set_backend(backend), threads)
    from kzoo.data.image_folder import expand_image_paths, warn
    from kzoo.engine.checkpoints import load_model

    paths = expand_image_paths(images)
    model = load_model(checkpoint, trust=trust, compile=False)
    input_shape = tuple(model.inputs[0].shape[1:])
    if len(input_shape) != 3:
        raise DataError(f"kzoo predict takes image models; {model.name} expects inputs of shape {input_shape}.")
    config = read_run_config(run_dir_of(checkpoint)) or {}
    class_names = config.get("class_names")
    if invert is None and config.get("data_folder"):
        invert = False
    results = []
    for start in range(0, len(paths), batch_size):
        chunk, batch = [], []
        for path in paths[start:start + batch_size]:
            try:
                array = load_image(path, input_shape)
            except DataError as exc:
                if len(paths) == 1:
                    raise
                warn(f"skipping {exc}")
                continue
            chunk.append(path)
            batch.append(as_model_input(array, input_shape, invert))
        if batch:
            probs = predict_proba(model, np.stack(batch), forward=inference_forward)
            results += top_k_results(chunk, probs, class_names, top_k)
    if not results:
        raise DataError(f"None of the {len(paths)} images is readable.")
    if output:
        write_predictions_csv(results, output, top_k)
    return results


def top_k_results(images, probs, class_names, top_k):
    """``[{"image", "top": [{"class", "name", "probability"}]}]`` from class probabilities per image."""
    results = []
    for path, row in zip(images, probs):
        order = np.argsort(row)[::-1][:top_k]
        results.append({"image": str(path), "top": [
            {"class": int(i), "name": class_names[i] if class_names and i < len(class_names) else str(i),
             "probability": round(float(row[i]), 6)} for i in order]})
    return results


def write_predictions_csv(results, path, top_k):
    """One row per image: ``path, class_1, probability_1, ..., class_k, probability_k`` (written atomically,
    under a unique temporary name, so two commands writing the same file never mix their rows)."""
    from kzoo.engine.checkpoints import atomic_write

    header = ["path"] + [f"{key}_{rank}" for rank in range(1, top_k + 1) for key in ("class", "probability")]

    def write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for result in results:
                row = [result["image"]]
                for guess in result["top"]:
                    row += [guess["name"], f"{guess['probability']:.6f}"]
                writer.writerow(row)

    atomic_write(path, write)


def write_json(data, path):
    """``data`` as indented JSON into ``path`` (callers make it atomic: ``atomic_write(final, write_json...)``)."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
