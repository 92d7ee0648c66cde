"""Using a trained run of a token task: translate, caption, classify texts, and evaluate any task's run.

A run folder's ``config.yaml`` names the task it trained (``task_kind``) and holds the vocabularies; the task
is restored from it (``from_run``), so a run decodes with exactly its own tokens.
"""

import os

from kzoo.engine.runs import read_run_config, run_dir_of
from kzoo.errors import CheckpointError, DataError


def run_task_kind(path):
    """The task a run folder (or a checkpoint inside one) trained, or ``None`` without a run config."""
    return (read_run_config(run_dir_of(path)) or {}).get("task_kind") if os.path.exists(path) else None


def restore_task(config):
    """The task object of a run's ``config.yaml`` (its vocabularies restored where the task has any)."""
    from kzoo.tasks import task_class

    task = task_class(config.get("task_kind"))
    return task.from_run(config) if hasattr(task, "from_run") else task()


def load_run(run, *, expect, trust=False, backend=None, threads=None):
    """``(model, task, config)`` of a run folder that trained task ``expect``.

    Raises:
        CheckpointError: no such run folder, or it trained another task (both named).
    """
    from kzoo.backend import set_backend, use_threads

    use_threads(set_backend(backend), threads)
    from kzoo.engine.checkpoints import load_model

    if not os.path.exists(run):
        raise CheckpointError(f"No such run folder or checkpoint: {run}")
    config = read_run_config(run_dir_of(run)) or {}
    if config.get("task_kind") != expect:
        raise CheckpointError(f"{run} trained task {config.get('task_kind')!r}, not {expect!r}.")
    return load_model(run, trust=trust, compile=False), restore_task(config), config


def translate(run, sentences, *, beam=1, max_len=None, trust=False, backend=None):
    """Translate sentences with a translation run (``kzoo generate RUN --input ...``); unknown words are ``<unk>``."""
    if isinstance(sentences, str):
        sentences = [sentences]
    model, task, _ = load_run(run, expect="translation", trust=trust, backend=backend)
    return task.translate(model, list(sentences), beam=beam, max_len=max_len)


def caption(run, images, *, beam=1, max_len=None, invert=None, trust=False, backend=None, threads=None):
    """Captions of image files with a captioning run (``kzoo predict RUN IMAGE...``).

    ``invert``: as :func:`kzoo.engine.evaluation.predict` (``None``: invert a grayscale image with a light border).
    """
    from kzoo.data.image_folder import image_batch

    model, task, _ = load_run(run, expect="captioning", trust=trust, backend=backend, threads=threads)
    batch = image_batch(images, tuple(model.inputs[0].shape[1:]), invert)
    captions = task.caption(model, batch, beam=beam, max_len=max_len)
    return [{"image": str(path), "caption": text} for path, text in zip(images, captions)]


def classify_texts(run, texts, *, trust=False, backend=None, threads=None):
    """The class of each text with a text-classification run (``kzoo predict RUN "a wonderful film."``)."""
    model, task, config = load_run(run, expect="text_classification", trust=trust, backend=backend,
                                    threads=threads)
    from kzoo.engine.forward import inference_forward

    return task.classify(model, list(texts), config.get("class_names"), forward=inference_forward)


def evaluate_run(model, config, *, data, data_dir=None, limit=0, batch_size=256, beam=1):
    """Score a run of any non-classification task on its test split, the way its training ended."""
    from kzoo.data import load_dataset
    from kzoo.engine import config as cfg
    from kzoo.engine.forward import inference_forward

    task = restore_task(config)
    if hasattr(task, "beam"):
        task.beam = beam
    stored = {k: v for k, v in config.items() if k in cfg.FIELDS}
    stored.update(data=data, data_dir=data_dir)
    run_config = cfg.resolve(stored)
    dataset = load_dataset(data, data_dir=data_dir)
    prepared = task.prepare(dataset, run_config)
    x, y = prepared.x_test, prepared.y_test
    if limit:
        x, y = x[:limit], y[:limit]
    if x is None or not len(x):
        raise DataError(f"Dataset {data!r} has no test examples for this {config.get('task_kind')} run.")
    return task.evaluate(model, x, y, forward=inference_forward, class_names=prepared.class_names,
                         batch_size=batch_size, loss=run_config.loss)
