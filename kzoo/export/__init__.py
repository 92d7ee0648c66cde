"""``kzoo export``: a trained model as ONNX, TF SavedModel, LiteRT, OpenVINO IR or a ``torch.export`` program,
checked in its own runtime before it is kept.

    import kzoo
    kzoo.export("runs/lenet5-mnist_embedded-1", "onnx")          # -> runs/lenet5-mnist_embedded-1/best.onnx
    kzoo.export("model.keras", "saved_model", batch=1, output="served/lenet5")
    kzoo.export("runs/resnet18-mnist-1", "onnx", quantize="int8")  # -> best.int8.onnx, calibrated on training data

Each format is exported through Keras's own ``Model.export`` from the backend that serves it best, in a
subprocess on that backend (:mod:`kzoo.export.worker`), whatever the run trained on. The file is written under
a temporary name, loaded in its runtime, run on up to 1,000 samples of the run's test data (the embedded MNIST
for a bare checkpoint, or for a run whose registered dataset is not here; the output and the file's
``verification_data`` metadata say which) and compared with the Keras model; only a file within
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

__all__ = ["FORMATS", "TOLERANCE", "ExportError", "VerificationError", "export", "export_many", "get_format",
           "verification_line"]


def get_format(name):
    """The :class:`~kzoo.export.base.Format` called ``name``; :class:`ExportError` naming the known ones."""
    fmt = FORMATS.get(str(name).lower())
    if fmt is None:
        raise ExportError(f"Unknown export format {name!r}. Choose one of: {', '.join(FORMATS)}.")
    return fmt


def export(source, format, *, output=None, opset=None, batch=None, overwrite=False, trust=False,
           limit=VERIFY_SAMPLES, tolerance=TOLERANCE, quantize=None, min_agreement=None):
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
        tolerance: the largest difference from the Keras outputs that passes (relative above 1).
        quantize: ``"int8"`` (``onnx`` only): post-training int8 quantization calibrated on the run's training
            data (:mod:`kzoo.export.quantize`); it passes with a top-1 agreement of at least
            ``min_agreement`` (default :data:`~kzoo.export.quantize.INT8_AGREEMENT`) instead of ``tolerance``.
            Default path ``best.int8.onnx``.

    Returns:
        ``{"format", "path", "max_abs_diff", "top1_agreement", "samples", "tolerance", "ok", "metadata"}``
        (with ``quantize``: ``"quantize"`` and ``"min_agreement"`` too).

    Raises:
        ExportError: unknown format, missing dependency, bad option, existing output, or a model the format
            cannot hold (exit 2); nothing is left behind.
        VerificationError: the file's outputs differ from the Keras model's beyond the tolerance (exit 1); the
            file is removed.
    """
    job = _prepare(source, format, output=output, opset=opset, batch=batch, overwrite=overwrite, trust=trust,
                   limit=limit, tolerance=tolerance, quantize=quantize, min_agreement=min_agreement)
    result = _run_jobs([job])[0]
    if "error" in result:
        raise (VerificationError if result["error"] == "verification" else ExportError)(result["message"])
    return result


def export_many(sources, formats, *, output_dir=None, batch=None, overwrite=False, trust=False,
                limit=VERIFY_SAMPLES, tolerance=TOLERANCE, quantize=None, min_agreement=None):
    """Export every source to every format, with one subprocess per backend instead of one per file.

    Returns one result per (source, format) in that order, as :func:`export` returns it; a file that could
    not be exported or failed its verification is not kept, and its result is ``{"source", "format", "error",
    "message"}`` instead (``error``: ``unsupported``, ``verification``, ``user`` or ``crashed``). Mistakes
    in the arguments (a format, an existing output) raise :class:`ExportError` before anything is written.
    """
    jobs = []
    for source in sources:
        for fmt in formats:
            output = None
            if output_dir is not None:
                stem = os.path.splitext(os.path.basename(_resolve_checkpoint(source)))[0]
                if os.path.isdir(source):
                    stem = os.path.basename(os.path.normpath(source))
                if quantize:
                    stem = f"{stem}.{quantize}"
                output = os.path.join(output_dir, get_format(fmt).default_path(stem))
            jobs.append(_prepare(source, fmt, output=output, batch=batch, overwrite=overwrite, trust=trust,
                                 limit=limit, tolerance=tolerance, quantize=quantize, min_agreement=min_agreement))
    return _run_jobs(jobs)


def _prepare(source, format, *, output=None, opset=None, batch=None, overwrite=False, trust=False,
             limit=VERIFY_SAMPLES, tolerance=TOLERANCE, quantize=None, min_agreement=None):
    """Check everything that can be checked without Keras; the job for the worker."""
    fmt = get_format(format)
    checkpoint = _resolve_checkpoint(source)
    if opset is not None and fmt.name != "onnx":
        raise ExportError(f"--opset applies to the onnx format only. Received: format={fmt.name!r}, opset={opset}.")
    if quantize is not None:
        from kzoo.export.quantize import KINDS

        if quantize not in KINDS:
            raise ExportError(f"--quantize takes {', '.join(KINDS)}. Received: quantize={quantize!r}.")
        if quantize not in fmt.quantizes:
            able = [f.name for f in FORMATS.values() if quantize in f.quantizes]
            raise ExportError(f"--quantize {quantize} applies to the {', '.join(able)} format only. "
                              f"Received: format={fmt.name!r}.")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ExportError(f"batch must be a positive integer or None (dynamic). Received: batch={batch!r}.")
    missing = fmt.missing_modules()
    if missing:
        raise ExportError(f"The {fmt.name} export needs {', '.join(missing)}, which "
                          f"{'is' if len(missing) == 1 else 'are'} not installed. Install it with: "
                          f"pip install 'kzoo[{EXTRA}]'" + (" torch==2.13.0" if "torch" in missing else "")
                          + (" tensorflow-cpu" if "tensorflow" in missing else ""))
    stem = os.path.splitext(checkpoint)[0]
    path = os.fspath(output) if output else fmt.default_path(f"{stem}.{quantize}" if quantize else stem)
    fmt.check_path(path)
    existing = [p for p in fmt.artifacts(path) if os.path.lexists(p)]
    if existing and not overwrite:
        raise ExportError(f"{existing[0]} already exists; pass --overwrite to replace it.")
    run_dir = os.fspath(source) if os.path.isdir(source) else os.path.dirname(os.path.abspath(checkpoint))
    run_config = _run_config(run_dir)
    return {"source": checkpoint, "format": fmt.name, "backend": fmt.backend, "path": path,
            "tmp": temporary_path(path, fmt), "batch": batch, "opset": opset, "trust": trust, "limit": limit,
            "tolerance": tolerance, "quantize": quantize, "min_agreement": min_agreement, "run_config": run_config,
            "run_dir": run_dir, "metadata": _base_metadata(checkpoint, run_config, run_dir)}


def _run_jobs(jobs):
    """Run the jobs, one worker per backend, the workers at the same time (a torch and a tensorflow process
    import, load and trace independently); keep the verified files, remove the rest."""
    from concurrent.futures import ThreadPoolExecutor

    groups = {}
    for i, job in enumerate(jobs):
        groups.setdefault(job["backend"], []).append(i)
        os.makedirs(os.path.dirname(os.path.abspath(job["path"])), exist_ok=True)
        remove(FORMATS[job["format"]].artifacts(job["tmp"]))
    results = [None] * len(jobs)
    try:
        with ThreadPoolExecutor(max_workers=len(groups)) as pool:
            running = {backend: pool.submit(_run_worker, [jobs[i] for i in index], backend)
                       for backend, index in groups.items()}
            for backend, index in groups.items():
                for i, outcome in zip(index, running[backend].result()):
                    results[i] = _finish(jobs[i], outcome)
    finally:
        for job in jobs:
            remove(FORMATS[job["format"]].artifacts(job["tmp"]))
    return results


def _finish(job, outcome):
    fmt = FORMATS[job["format"]]
    head = {"source": job["source"], "format": fmt.name, "path": job["path"]}
    if "error" in outcome:
        if outcome["error"] == "unsupported":
            message = f"The {fmt.name} format cannot hold {job['source']}: {outcome['message']}"
        elif outcome["error"] == "user":
            message = outcome["message"]
        else:
            message = f"Exporting {job['source']} to {fmt.name} failed: {outcome['message']}\n{outcome.get('log', '')}"
        return dict(head, error=outcome["error"], message=message)
    result = dict(outcome, **head, tolerance=job["tolerance"])
    if job.get("quantize"):  # int8 is not float32-close: it must keep the float model's top-1 classes
        from kzoo.export.quantize import INT8_AGREEMENT

        least = INT8_AGREEMENT if job.get("min_agreement") is None else job["min_agreement"]
        result.update(quantize=job["quantize"], min_agreement=least)
        agreement = outcome.get("top1_agreement")
        if agreement is None:  # one value per sample (a Siamese distance): no classes to keep
            return dict(head, error="unsupported", message=(
                f"--quantize {job['quantize']} is verified by the top-1 class, and {job['source']} outputs one "
                f"value per sample; export it without --quantize."))
        result["ok"] = bool(outcome["finite"]) and agreement >= least
    else:
        result["ok"] = bool(outcome["finite"]) and outcome["scaled_diff"] <= job["tolerance"]
    if not result["ok"]:
        return dict(head, error="verification", result=result,
                    message=f"{verification_line(result)}: outside the tolerance, so {job['path']} was not kept.")
    place(fmt, job["tmp"], job["path"])
    if job["run_config"]:  # a run's checkpoint: its MODEL_CARD.md records the verification
        from kzoo.engine.model_card import append_export

        try:
            append_export(job["run_dir"], result)
        except OSError as exc:  # someone else's read-only run exported elsewhere: the file is kept all the same
            import warnings

            warnings.warn(f"{job['run_dir']}: MODEL_CARD.md not updated ({exc.strerror or exc})", stacklevel=2)
    return result


def verification_line(result):
    """``onnx  runs/x/best.onnx  max |diff| 1.2e-07  top-1 agreement 100.00%  (1,000 samples, ...)  ok``, then
    the data the samples are (and, for an int8 file, the data it was calibrated on) on lines of their own."""
    agreement = "-" if result.get("top1_agreement") is None else f"{100 * result['top1_agreement']:.2f}%"
    status = "ok" if result["ok"] else "FAILED"
    rule = (f"{result['quantize']}: top-1 agreement >= {100 * result['min_agreement']:g}%" if result.get("quantize")
            else f"tolerance {result['tolerance']:g}")
    return (f"{result['format']}  {result['path']}  max |diff| {result['max_abs_diff']:.1e}  "
            f"top-1 agreement {agreement}  ({result['samples']:,} samples, {rule})  {status}"
            + (f"\n  verified on: {result['verification_data']}" if result.get("verification_data") else "")
            + (f"\n  calibrated on: {calibrated}" if (calibrated := ((result.get("metadata") or {}).get(
                "quantization") or {}).get("calibration_data")) else ""))


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


def _run_config(run_dir):
    from kzoo.engine.runs import read_run_config

    return read_run_config(run_dir) or {}


def _base_metadata(checkpoint, run_config, run_dir):
    """What the run says about the model; the worker adds what the model itself says (inputs, name, task).

    A run's file also names the run folder and, for a run on an image folder, the split it drew (seed and
    fractions), so that ``kzoo evaluate FILE --data FOLDER`` scores the run's own test files.
    """
    from kzoo import __version__

    metadata = {"kzoo_version": __version__, "model": run_config.get("model"), "task": run_config.get("task_kind"),
                "class_names": run_config.get("class_names"), "data": run_config.get("data")}
    if run_config:
        metadata["run"] = os.path.abspath(run_dir)
    if run_config.get("data_folder"):
        metadata["split"] = {key: run_config.get(key) for key in ("seed", "val_split", "test_split")}
    if run_config.get("vocab_tokens"):
        metadata.update(vocab_kind=run_config.get("vocab_kind"), vocab_tokens=run_config["vocab_tokens"])
    return metadata


def _run_worker(jobs, backend):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    with tempfile.TemporaryDirectory(prefix="kzoo-export-") as folder:
        job_path, result_path = os.path.join(folder, "jobs.json"), os.path.join(folder, "results.json")
        with open(job_path, "w", encoding="utf-8") as handle:
            json.dump({"backend": backend, "jobs": jobs}, handle)
        process = subprocess.run([sys.executable, "-m", "kzoo.export.worker", job_path, result_path], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if not os.path.exists(result_path):
            crash = {"error": "crashed", "message": f"the {backend} export process exited with status "
                                                    f"{process.returncode}", "log": process.stdout[-3000:]}
            return [crash] * len(jobs)
        with open(result_path, encoding="utf-8") as handle:
            outcomes = json.load(handle)
        return outcomes + [{"error": "crashed", "message": "the export process stopped before this job",
                            "log": process.stdout[-3000:]}] * (len(jobs) - len(outcomes))


class _CallablePackage(types.ModuleType):
    """``kzoo.export(...)`` is :func:`export`; ``kzoo.export.FORMATS`` and the format modules stay reachable."""

    def __call__(self, *args, **kwargs):
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
