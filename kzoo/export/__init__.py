"""``kzoo export``: a trained model as ONNX, TF SavedModel, LiteRT, OpenVINO IR or a ``torch.export`` program,
checked in its own runtime before it is kept.

    import kzoo
    kzoo.export("runs/lenet5-mnist_embedded-1", "onnx")          # -> runs/lenet5-mnist_embedded-1/best.onnx
    kzoo.export("model.keras", "saved_model", batch=1, output="served/lenet5")

Each format is exported through Keras's own ``Model.export`` from the backend that serves it best, in a
subprocess on that backend (:mod:`kzoo.export.worker`), whatever the run trained on. The file is written under
a temporary name, loaded in its runtime, run on up to 1,000 samples of the run's test data (the embedded MNIST
or text for a bare checkpoint) and compared with the Keras model; only a file within
:data:`~kzoo.export.base.TOLERANCE` is renamed to the requested path. Importing this package imports numpy only.
"""

import json
import os
import subprocess
import sys
import tempfile
import types

from kzoo.export.base import (EXTRA, TOLERANCE, VERIFY_SAMPLES, ExportError, VerificationError, place, remove,
                              temporary_path)
from kzoo.export.litert import LiteRTFormat
from kzoo.export.onnx import OnnxFormat
from kzoo.export.openvino import OpenVINOFormat
from kzoo.export.saved_model import SavedModelFormat
from kzoo.export.torch import TorchExportFormat

FORMATS = {f.name: f for f in (OnnxFormat(), SavedModelFormat(), LiteRTFormat(), OpenVINOFormat(),
                                TorchExportFormat())}

__all__ = ["FORMATS", "TOLERANCE", "ExportError", "VerificationError", "export", "get_format"]


def get_format(name):
    """The :class:`~kzoo.export.base.Format` called ``name``; :class:`ExportError` naming the known ones."""
    fmt = FORMATS.get(str(name).lower())
    if fmt is None:
        raise ExportError(f"Unknown export format {name!r}. Choose one of: {', '.join(FORMATS)}.")
    return fmt


def export(source, format, *, output=None, opset=None, batch=None, overwrite=False, trust=False,
           limit=VERIFY_SAMPLES):
    """Export a run folder or ``.keras`` checkpoint and verify the file in its own runtime (``kzoo export``).

    Args:
        source: a run folder (its ``best.keras``, else ``last.keras``) or a ``.keras`` file.
        format: ``onnx``, ``saved_model``, ``litert``, ``openvino`` or ``torch``.
        output: where to write; default beside the checkpoint (``best.onnx``, ``best_saved_model/``, ...).
        opset: ONNX opset (``onnx`` only).
        batch: a fixed batch size; ``None`` keeps the batch axis dynamic.
        overwrite: replace an existing export at ``output``.
        trust: load a checkpoint with code in it (Lambda layers).
        limit: how many test samples the verification runs (at most).

    Returns:
        ``{"format", "path", "max_abs_diff", "top1_agreement", "samples", "tolerance", "ok", "metadata"}``.

    Raises:
        ExportError: unknown format, missing dependency, bad option, existing output, or a model the format
            cannot hold (exit 2); nothing is left behind.
        VerificationError: the file's outputs differ from the Keras model's beyond the tolerance (exit 1); the
            file is removed.
    """
    fmt = get_format(format)
    checkpoint = _resolve_checkpoint(source)
    if opset is not None and fmt.name != "onnx":
        raise ExportError(f"--opset applies to the onnx format only. Received: format={fmt.name!r}, opset={opset}.")
    if batch is not None and (not isinstance(batch, int) or batch < 1):
        raise ExportError(f"batch must be a positive integer or None (dynamic). Received: batch={batch!r}.")
    missing = fmt.missing_modules()
    if missing:
        raise ExportError(f"The {fmt.name} export needs {', '.join(missing)}, which "
                          f"{'is' if len(missing) == 1 else 'are'} not installed. Install it with: "
                          f"pip install 'kzoo[{EXTRA}]'"
                          + (" torch==2.13.0" if "torch" in missing else ""))
    stem = os.path.splitext(checkpoint)[0]
    path = os.fspath(output) if output else fmt.default_path(stem)
    fmt.check_path(path)
    existing = [p for p in fmt.artifacts(path) if os.path.lexists(p)]
    if existing and not overwrite:
        raise ExportError(f"{existing[0]} already exists; pass --overwrite to replace it.")
    if os.path.dirname(os.path.abspath(path)):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temporary_path(path, fmt)
    remove(fmt.artifacts(tmp))
    run_config = _run_config(source, checkpoint)
    job = {"source": checkpoint, "format": fmt.name, "backend": fmt.backend, "tmp": tmp, "batch": batch,
           "opset": opset, "trust": trust, "limit": limit, "run_config": run_config,
           "metadata": _base_metadata(checkpoint, run_config)}
    try:
        result = _run_worker(job)
        if "error" in result:
            if result["error"] == "unsupported":
                raise ExportError(f"The {fmt.name} format cannot hold this model: {result['message']}")
            if result["error"] == "user":
                raise ExportError(result["message"])
            raise ExportError(f"Exporting to {fmt.name} failed: {result['message']}\n{result.get('log', '')}")
        result.update(format=fmt.name, path=path)
        if not result["ok"]:
            raise VerificationError(f"{verification_line(result)}: outside the tolerance, {path} not written.")
        place(fmt, tmp, path)
        return result
    finally:
        remove(fmt.artifacts(tmp))


def verification_line(result):
    """``onnx  runs/x/best.onnx  max |diff| 1.2e-07  top-1 agreement 100.00%  (1,000 samples)  ok``."""
    agreement = "-" if result.get("top1_agreement") is None else f"{100 * result['top1_agreement']:.2f}%"
    status = "ok" if result["ok"] else "FAILED"
    return (f"{result['format']}  {result['path']}  max |diff| {result['max_abs_diff']:.1e}  "
            f"top-1 agreement {agreement}  ({result['samples']:,} samples, tolerance {result['tolerance']:g})  "
            f"{status}")


def _resolve_checkpoint(source):
    source = os.fspath(source)
    if os.path.isdir(source):
        for name in ("best.keras", "last.keras"):
            if os.path.exists(os.path.join(source, name)):
                return os.path.join(source, name)
        raise ExportError(f"{source} is a folder without best.keras or last.keras; is it a kzoo run folder?")
    if not os.path.exists(source):
        raise ExportError(f"No such run folder or checkpoint: {source}")
    if not source.endswith(".keras"):
        raise ExportError(f"Expected a .keras file or a run folder. Received: {source}")
    return source


def _run_config(source, checkpoint):
    from kzoo.engine.evaluation import read_run_config

    folder = source if os.path.isdir(source) else os.path.dirname(os.path.abspath(checkpoint))
    return read_run_config(folder) or {}


def _base_metadata(checkpoint, run_config):
    from kzoo import __version__
    from kzoo.export.base import describe_task

    model = run_config.get("model") or os.path.splitext(os.path.basename(checkpoint))[0]
    task = run_config.get("task_kind")
    if task is None:
        try:
            from kzoo.registry import model_info

            task = model_info(model).get("task")
        except Exception:  # a checkpoint of an unregistered model: the task is unknown, not an error
            task = None
    metadata = {"kzoo_version": __version__, "model": model, "task": task or "classification",
                "class_names": run_config.get("class_names"), "data": run_config.get("data"),
                "preprocessing": describe_task(task)}
    if run_config.get("vocab_tokens"):
        metadata.update(vocab_kind=run_config.get("vocab_kind"), vocab_tokens=run_config["vocab_tokens"])
    return metadata


def _run_worker(job):
    env = dict(os.environ, KERAS_BACKEND=job["backend"], TF_CPP_MIN_LOG_LEVEL="3")
    with tempfile.TemporaryDirectory(prefix="kzoo-export-") as folder:
        job_path, result_path = os.path.join(folder, "job.json"), os.path.join(folder, "result.json")
        with open(job_path, "w", encoding="utf-8") as handle:
            json.dump(job, handle)
        process = subprocess.run([sys.executable, "-m", "kzoo.export.worker", job_path, result_path], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if not os.path.exists(result_path):
            return {"error": "crashed", "message": f"the {job['backend']} export process exited with status "
                                                   f"{process.returncode}", "log": process.stdout[-3000:]}
        with open(result_path, encoding="utf-8") as handle:
            return json.load(handle)


class _CallablePackage(types.ModuleType):
    """``kzoo.export(...)`` is :func:`export`; ``kzoo.export.FORMATS`` and the format modules stay reachable."""

    def __call__(self, *args, **kwargs):
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
