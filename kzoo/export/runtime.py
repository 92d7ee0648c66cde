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

    ``data`` is a dataset name or an image folder (its ``test/`` files, else the seeded 10% test split that
    ``kzoo train --data PATH`` draws by default, decoded at the file's input size).
    """
    from kzoo.data import load_dataset
    from kzoo.tasks.classification import report_from_probabilities
    from kzoo.tasks.base import images_to_float

    runner, metadata = load_exported(path)
    shape, batch = _image_input(metadata, path)
    data = data or metadata.get("data")
    if data is None:
        raise DataError(f"{path} does not name the dataset it was trained on; pass --data NAME.")
    from kzoo.data.image_folder import looks_like_path

    if looks_like_path(data):  # an image folder: its test/ files, else the default seeded 10% test split
        dataset = _folder_test_set(data, shape, limit)
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
    return report


def _folder_test_set(root, shape, limit=0):
    """The test files of an image folder as a :class:`~kzoo.data.dataset.Dataset`-like ``x_test``/``y_test``."""
    import types

    from kzoo.data.image_folder import open_image_folder
    from kzoo.export.base import decode_readable

    if len(shape) != 3:
        raise DataError(f"An image folder needs an image model; this one expects inputs of shape {shape}.")
    folder = open_image_folder(root, image_size=shape[:2], channels=shape[2])
    files = folder.test.head(limit) if limit else folder.test
    if not len(files):
        raise DataError(f"{root} has no test images; add a test/ folder.")
    images, keep = decode_readable(files.paths, shape[:2], shape[2])
    if images is None:
        raise DataError(f"None of the {len(files)} test images of {root} is readable.")
    return types.SimpleNamespace(x_test=images,
                                 y_test=np.asarray(files.labels)[keep], num_classes=folder.num_classes,
                                 class_names=list(folder.class_names))
