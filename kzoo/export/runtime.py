"""Using an exported file without Keras: ``kzoo predict FILE.onnx ...`` and ``kzoo evaluate FILE.onnx``.

The file's format is told from its path; it runs in its own runtime (an ONNX file needs only onnxruntime and
numpy), and the class names and input shape come from the metadata kzoo stored in it at export.
"""

import importlib.util
import os

import numpy as np

from kzoo.errors import DataError
from kzoo.export.base import ExportError, run_in_chunks

_SUFFIXES = {".onnx": "onnx", ".tflite": "litert", ".xml": "openvino", ".pt2": "torch"}


def exported_format(path):
    """The :class:`~kzoo.export.base.Format` of an exported file or SavedModel folder, else ``None``."""
    from kzoo.export import FORMATS

    path = os.fspath(path)
    if os.path.isdir(path):
        return FORMATS["saved_model"] if os.path.exists(os.path.join(path, "saved_model.pb")) else None
    name = _SUFFIXES.get(os.path.splitext(path)[1].lower())
    return FORMATS[name] if name else None


def load_exported(path):
    """``(runner, metadata)``: a function ``list of arrays -> outputs`` and the metadata kzoo stored."""
    fmt = exported_format(path)
    if fmt is None:
        raise ExportError(f"{path} is not an exported model (.onnx, .tflite, .xml, .pt2 or a SavedModel folder).")
    if not os.path.exists(path):
        raise ExportError(f"No such exported model: {path}")
    missing = [m for m in fmt.runtime_requires if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(f"Running a {fmt.name} file needs {', '.join(missing)}; install it with: "
                          f"pip install 'kzoo[export]'")
    metadata = fmt.read_metadata(path)
    return fmt.load(path), metadata


def _image_input(metadata, path):
    inputs = metadata.get("inputs") or []
    if len(inputs) != 1 or "int" in inputs[0].get("dtype", "") or metadata.get("task") not in (None, "classification"):
        raise DataError(f"{path} is not an image classifier (task {metadata.get('task')!r}, inputs "
                        f"{[i.get('shape') for i in inputs]}); kzoo predict/evaluate score classifiers.")
    return tuple(inputs[0]["shape"][1:]), metadata.get("batch")


def predict_exported(path, images, *, top_k=3, invert=None, output=None):
    """Top-k classes for image files, folders and globs through the file's own runtime (see :func:`kzoo.predict`)."""
    from kzoo.data.image_folder import expand_image_paths
    from kzoo.data.image_folder import image_batch
    from kzoo.engine.evaluation import top_k_results, write_predictions_csv

    images = expand_image_paths(images)

    runner, metadata = load_exported(path)
    shape, batch = _image_input(metadata, path)
    if len(shape) != 3:
        raise DataError(f"kzoo predict takes image models; {path} expects inputs of shape {shape}.")
    x = image_batch(images, shape, invert)
    probs = run_in_chunks(runner, [x], batch if isinstance(batch, int) else None)
    results = top_k_results(images, probs, metadata.get("class_names"), top_k)
    if output:
        write_predictions_csv(results, output, top_k)
    return results


def evaluate_exported(path, *, data=None, data_dir=None, batch_size=256, limit=0):
    """Accuracy, loss, per-class scores and confusion matrix of an exported classifier on a test split.

    ``data`` is a dataset name or an image folder, decoded at the file's input size. A file exported from a run
    on that folder is scored on exactly the run's test files (its ``data_files.json``, found through the run
    folder the file's metadata names, else the folder the file lies in), as ``kzoo evaluate RUN`` scores them.
    Otherwise the folder is split as the run split it (the seed and fractions in the metadata), or, for a file
    that names no run, as ``kzoo train --data PATH`` splits it by default; ``report["split"]`` says which.
    """
    from kzoo.data import load_dataset
    from kzoo.tasks.classification import report_from_probabilities
    from kzoo.tasks.base import images_to_float

    runner, metadata = load_exported(path)
    shape, batch = _image_input(metadata, path)
    data = data or metadata.get("data")
    if data is None:
        raise DataError(f"{path} does not name the dataset it was trained on; pass --data NAME.")
    from kzoo.data.registry import looks_like_path

    if looks_like_path(data):  # an image folder: the run's recorded test files, else a seeded split of it
        dataset = _folder_test_set(path, metadata, data, shape, limit)
    else:
        dataset = load_dataset(data, data_dir=data_dir)
    x, y = images_to_float(dataset.x_test), np.asarray(dataset.y_test).astype("int64")
    if limit:
        x, y = x[:limit], y[:limit]
    if int(np.prod(x.shape[1:])) != int(np.prod(shape)):
        raise DataError(f"{path} expects inputs of shape {shape}, but {data!r} has images of shape "
                        f"{tuple(x.shape[1:])}. Evaluate on the dataset the model was trained on.")
    x = np.ascontiguousarray(x.reshape((len(x), *shape)))
    probs = run_in_chunks(runner, [x], batch if isinstance(batch, int) else None, chunk=batch_size)
    if probs.shape[-1] < dataset.num_classes:
        raise DataError(f"{path} predicts {probs.shape[-1]} classes, but {data!r} has {dataset.num_classes}.")
    report = report_from_probabilities(probs, y, class_names=metadata.get("class_names") or dataset.class_names)
    report.update({"model": metadata.get("model", os.path.basename(path)), "data": data, "checkpoint": path,
                   "format": exported_format(path).name})
    if getattr(dataset, "split", None):
        report.update(split=dataset.split, test_files=dataset.test_files)
    return report


def _folder_test_set(path, metadata, root, shape, limit=0):
    """The test files of the image folder ``root`` for the exported file at ``path``, decoded at ``shape``.

    Returns a namespace with ``x_test``, ``y_test``, ``num_classes``, ``class_names``, ``split`` (a sentence:
    which files these are) and ``test_files`` (the same as a dict).
    """
    import types

    from kzoo.data.image_folder import FILE_LIST, open_image_folder, read_file_lists
    from kzoo.export.base import decode_readable

    if len(shape) != 3:
        raise DataError(f"An image folder needs an image model; this one expects inputs of shape {shape}.")
    record, run_dir, run_split = _run_record(path, metadata)
    if record is not None and _same_folder(record["root"], root):
        folder = read_file_lists(record)
        folder.image_size, folder.channels = shape[:2], shape[2]
        how = {"source": "run", "run": run_dir, "files": len(folder.test)}
        said = f"the {len(folder.test):,} test files recorded by the run {run_dir} ({FILE_LIST})"
    else:
        split = run_split or metadata.get("split") or {}
        seed, val_split, test_split = (split.get(k) for k in ("seed", "val_split", "test_split"))
        seed = seed or 0
        val_split = 0.1 if val_split is None else val_split
        test_split = 0.1 if test_split is None else test_split
        folder = open_image_folder(root, val_split=val_split, test_split=test_split, seed=seed,
                                   image_size=shape[:2], channels=shape[2])
        how = {"source": "split", "seed": seed, "val_split": val_split, "test_split": test_split,
               "files": len(folder.test), "layout": folder.layout}
        if record is not None:
            whose = f"the split of the run {run_dir}, whose recorded files lie under {record['root']}"
        elif split:
            whose = "the run's split, as the file's metadata records it (the run folder is not here)"
        else:
            whose = "kzoo train's default split: the file names no run"
        if folder.layout == "splits" and any(p.lower() == "test" for p in os.listdir(folder.root)):
            said = f"the {len(folder.test):,} files of {os.path.join(root, 'test')}"
        else:
            said = (f"{len(folder.test):,} test files of {root} split with seed {seed}, val_split {val_split:g}, "
                    f"test_split {test_split:g} ({whose})")
    files = folder.test.head(limit) if limit else folder.test
    if not len(files):
        raise DataError(f"{root} has no test images; add a test/ folder.")
    images, keep = decode_readable(files.paths, shape[:2], shape[2])
    if images is None:
        raise DataError(f"None of the {len(files)} test images of {root} is readable.")
    if limit:
        said += f"; the first {len(files):,} (--limit {limit})"
    return types.SimpleNamespace(x_test=images,
                                 y_test=np.asarray(files.labels)[keep], num_classes=folder.num_classes,
                                 class_names=list(folder.class_names), split=said, test_files=how)


def _run_record(path, metadata):
    """``(file lists, run folder, split)`` of the run the exported file belongs to, else ``(None, None, None)``.

    The run folder the metadata names comes first, then the folder the file lies in (``kzoo export`` writes
    ``best.onnx`` beside the run's checkpoint); ``split`` is that run's seed and fractions from its config.
    """
    from kzoo.data.image_folder import load_file_lists
    from kzoo.engine.runs import read_run_config

    for run_dir in dict.fromkeys(filter(None, (metadata.get("run"), os.path.dirname(os.path.abspath(path))))):
        record = load_file_lists(run_dir) if os.path.isdir(run_dir) else None
        if record is not None:
            config = read_run_config(run_dir) or {}
            split = {k: config[k] for k in ("seed", "val_split", "test_split") if k in config}
            return record, run_dir, split
    return None, None, None


def _same_folder(a, b):
    return os.path.realpath(os.path.expanduser(os.fspath(a))) == os.path.realpath(os.path.expanduser(os.fspath(b)))
