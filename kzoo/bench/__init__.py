"""``kzoo bench``: training and inference throughput of a model on every installed backend, engine and precision.

Each configuration (backend x engine x precision, and the hand-written PyTorch twin of the model from
:mod:`kzoo.bench.native_torch` per precision) runs in a process of its own (:mod:`kzoo.bench.worker`): one
Keras backend per process, and each row's peak memory is its own. Rows report samples/s, the ratio to the
native loop at the same precision and mode, peak memory (RSS on a CPU, the device allocator's peak on CUDA), the
engine that actually trained (``engine_used``: an engine that cannot take a model, or mixed precision, falls back
to ``fit`` and says so in ``notes``) and, on a GPU of :data:`PEAK_TFLOPS`, the fraction of the device's peak
FLOP/s the figure implies (forward = 2 x MACs per sample, training = 3 x forward).
"""

import importlib.util
import json
import os
import subprocess
import sys

from kzoo.backend import BACKENDS, installed_backends
from kzoo.errors import KzooError

ENGINES = {"torch": ("torch", "fit"), "tensorflow": ("tf", "xla", "fit"), "jax": ("fit",)}
PRECISIONS = ("float32", "mixed")
DEVICES = ("auto", "cpu", "cuda")

# Dense peak TFLOP/s of known devices (vendor data sheets), keyed by a substring of the device name, checked in
# order: (float32, tf32, 16-bit). Matched case-insensitively against torch.cuda.get_device_name / jax's kind.
PEAK_TFLOPS = (
    ("H200", (67.0, 494.0, 989.0)),
    ("H100 PCIe", (51.0, 378.0, 756.0)),
    ("H100", (67.0, 494.0, 989.0)),
    ("A100", (19.5, 156.0, 312.0)),
    ("L4", (30.3, 60.0, 121.0)),
    ("A10G", (31.2, 62.5, 125.0)),
    ("T4", (8.1, None, 65.0)),
)
# The peak a float32 run is held against: TF32, what cuDNN's convolutions (torch.backends.cudnn.allow_tf32),
# TensorFlow and JAX use on Ampere and later by default (torch's float32 matmuls stay fp32 unless allowed, so a
# dense-only model on torch is held against a peak it cannot reach: the row says which peak it used).
FLOAT32_PEAK = "tf32"


def peak_tflops(device_name, math_mode):
    """The device's dense peak TFLOP/s for ``math_mode`` ("fp32", "tf32" or "16bit"), or None if unknown."""
    column = {"fp32": 0, "tf32": 1, "16bit": 2}[math_mode]
    name = (device_name or "").lower()
    for key, peaks in PEAK_TFLOPS:
        if key.lower() in name:
            return peaks[column]
    return None


def flops_per_sample(macs, mode):
    """FLOPs per sample: a forward pass is 2 x MACs; a training step ~3 forward passes (6 x MACs)."""
    return (6 if mode == "train" else 2) * macs


def flop_fraction(samples_per_s, macs, mode, peak):
    """Fraction of ``peak`` TFLOP/s that ``samples_per_s`` at ``macs`` per sample implies (None if unknown)."""
    if not peak or not macs or not samples_per_s:
        return None
    return samples_per_s * flops_per_sample(macs, mode) / (peak * 1e12)


def cuda_available():
    """Whether a CUDA GPU is visible, asked of torch when installed, else of nvidia-smi."""
    if importlib.util.find_spec("torch") is not None:
        import torch

        return torch.cuda.is_available()
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _choose(kind, asked, known):
    if asked is None:
        return list(known)
    unknown = [a for a in asked if a not in known]
    if unknown:
        raise KzooError(f"Unknown {kind} {', '.join(map(repr, unknown))}. Choose from: {', '.join(known)}.")
    return list(dict.fromkeys(asked))


def plan(model, *, backends=None, engines=None, precisions=None, device="auto", input_shape=None,
         num_classes=None, options=None):
    """The configurations :func:`bench` runs and the notes it will report, after checking every argument."""
    from kzoo.registry import model_info

    info = model_info(model)  # an unknown name: KzooError with "did you mean"
    name = info["name"]
    backends = _choose("backend", backends, BACKENDS)
    installed = installed_backends()
    missing = [b for b in backends if b not in installed]
    if not installed:
        raise KzooError("No Keras backend is installed; install one, e.g. pip install 'kzoo[torch]' torch==2.13.0")
    if missing:
        raise KzooError(f"The {', '.join(missing)} backend{'s are' if len(missing) > 1 else ' is'} not installed "
                        f"here. Installed: {', '.join(installed)}.")
    all_engines = list(dict.fromkeys(e for b in BACKENDS for e in ENGINES[b]))
    engines = _choose("engine", engines, all_engines)
    precisions = _choose("precision", precisions, PRECISIONS)
    if device not in DEVICES:
        raise KzooError(f"Unknown device {device!r}. Choose from: {', '.join(DEVICES)}.")
    if device == "auto":
        device = "cuda" if cuda_available() else "cpu"
    elif device == "cuda" and not cuda_available():
        raise KzooError("--device cuda was asked for, but no CUDA GPU is visible here.")
    configs = [(b, e, p) for b in backends for e in ENGINES[b] if e in engines for p in precisions]
    if not configs:
        raise KzooError(f"No engine of {', '.join(engines)} runs on {', '.join(backends)}. Engines per backend: "
                        + "; ".join(f"{b}: {', '.join(ENGINES[b])}" for b in backends) + ".")
    native, notes = native_torch_available(name, input_shape, num_classes, options)
    if native:
        input_shape, num_classes = native["input_shape"], native["num_classes"]
        options = {**native["options"], **(options or {})}
    return {"model": name, "device": device, "configs": configs, "native": bool(native), "notes": notes,
            "input_shape": list(input_shape) if input_shape else None, "num_classes": num_classes,
            "options": options or {}}


def native_torch_available(name, input_shape=None, num_classes=None, options=None):
    """``(twin, notes)``: the settings of the hand-written PyTorch twin of ``name``, or None and why not."""
    if importlib.util.find_spec("torch") is None:
        return None, ["torch is not installed: no native PyTorch loop, no ratio"]
    from kzoo.bench.native_torch import KZOO_OPTIONS, MODELS, kzoo_input_shape

    if name not in MODELS:
        return None, [f"{name} has no hand-written PyTorch twin (kzoo/bench/native_torch.py has "
                      f"{', '.join(MODELS)}): no native loop, no ratio"]
    shape = kzoo_input_shape(name)
    twin_options = KZOO_OPTIONS.get(name, {})
    same_options = not options or _as_text(options) == _as_text(twin_options)  # `-o small_stem=true` is the twin's
    if (input_shape and tuple(input_shape) != shape) or (num_classes and num_classes != 10) or not same_options:
        return None, [f"the native {name} exists at input {','.join(map(str, shape))}, 10 classes and kzoo's "
                      f"default options (or the twin's own) only: no native loop, no ratio"]
    return {"input_shape": shape, "num_classes": 10, "options": twin_options}, []


def _as_text(options):
    return {key: str(value).lower() for key, value in options.items()}


def _environment(device, backend):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    if device == "cpu":
        env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    else:  # one process at a time: jax need not hold 75% of the GPU, and its peak figure stays meaningful
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    return env


def run_worker(spec, timeout):
    """Run one configuration in its own process; its rows, or one row with ``error``."""
    from kzoo.bench.worker import MARKER

    backend = spec.get("backend") or "torch"
    try:
        done = subprocess.run([sys.executable, "-m", "kzoo.bench.worker", json.dumps(spec)], capture_output=True,
                              text=True, timeout=timeout, env=_environment(spec["device"], backend))
    except subprocess.TimeoutExpired:
        return [{"error": f"timed out after {timeout} s"}]
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    tail = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return [{"error": f"exit status {done.returncode}: {tail[-1] if tail else 'no output'}"}]


def bench(model, *, backends=None, engines=None, precisions=None, device="auto", batch_size=64, steps=50,
          warmup=5, inference=True, input_shape=None, num_classes=None, options=None, timeout=900, progress=None,
          on_row=None):
    """Measure ``model``'s training (and inference) throughput per backend x engine x precision (``kzoo bench``).

    Args:
        model: registered model name.
        backends: backends to measure (default: every installed one); one that is not installed is an error.
        engines: engines to measure where their backend has them (default: all; ``kzoo.bench.ENGINES``).
        precisions: "float32" and/or "mixed" (default both); mixed is ``kzoo.train(mixed_precision=True)``'s
            policy: bfloat16 where the device computes in it (CPUs, GPUs from Ampere on), else float16.
        device: "auto" (CUDA when visible), "cpu" or "cuda".
        batch_size, steps, warmup: per configuration; ``steps`` timed training steps after ``warmup`` untimed
            ones (the tf engine rounds both up to whole calls), and ``steps`` timed inference calls.
        inference: also time inference (kzoo's ``predict`` path, ``kzoo evaluate``'s, and the native model in
            eval mode) per backend and precision.
        input_shape, num_classes, options: model settings; with any of them the model has no native twin.
        timeout: seconds per configuration's process.
        progress: called with a line of text before each configuration runs.
        on_row: called with each finished row as soon as its configuration is done (native rows come first,
            so every row is complete, ratio included, when it is handed over).

    Returns:
        A list of row dicts (see docs/benchmarks.md, "kzoo bench"): native rows first, then kzoo's.
    """
    if batch_size < 1 or steps < 1 or warmup < 0:
        raise KzooError(f"batch_size and steps must be >= 1 and warmup >= 0. Received: batch_size={batch_size}, "
                        f"steps={steps}, warmup={warmup}.")
    todo = plan(model, backends=backends, engines=engines, precisions=precisions, device=device,
                input_shape=input_shape, num_classes=num_classes, options=options)
    base = {"model": todo["model"], "device": todo["device"], "batch_size": batch_size, "steps": steps,
            "warmup": warmup, "input_shape": todo["input_shape"], "num_classes": todo["num_classes"],
            "options": todo["options"]}
    specs = []
    if todo["native"]:
        for precision in dict.fromkeys(p for _, _, p in todo["configs"]):
            specs.append({**base, "runner": "native_torch", "backend": None, "engine": "eager",
                          "precision": precision, "inference": inference})
    inferred = set()
    for backend, engine, precision in todo["configs"]:
        specs.append({**base, "runner": "kzoo", "backend": backend, "engine": engine, "precision": precision,
                      "inference": inference and (backend, precision) not in inferred})
        inferred.add((backend, precision))
    rows = []
    for spec in specs:
        if progress:
            progress(f"native torch, {spec['precision']}" if spec["runner"] == "native_torch"
                     else f"{spec['backend']}, engine {spec['engine']}, {spec['precision']}")
        for row in _rows(spec, run_worker(spec, timeout)):
            _add_ratio(row, rows, todo)
            _add_flop_fraction(row)
            rows.append(row)
            if on_row:
                on_row(row)
    return rows


def _rows(spec, results):
    keys = ("runner", "backend", "engine", "precision", "device", "batch_size")
    head = {"model": spec["model"], **{k: spec[k] for k in keys}}
    out = []
    for result in results:
        row = {**head, **result}
        if "error" in row:
            row["mode"] = "train"
        out.append(row)
    return out


def _add_ratio(row, rows, todo):
    native = next((r for r in rows if r["runner"] == "native_torch" and r.get("mode") == row.get("mode")
                   and r["precision"] == row["precision"] and r.get("samples_per_s")), None)
    row["native_samples_per_s"] = native["samples_per_s"] if native else None
    if row["runner"] == "native_torch":
        row["ratio_to_native"] = 1.0 if row.get("samples_per_s") else None
    elif native and row.get("samples_per_s"):
        row["ratio_to_native"] = round(row["samples_per_s"] / native["samples_per_s"], 3)
    else:
        row["ratio_to_native"] = None
        row.setdefault("notes", [])
        row["notes"] = row["notes"] + todo["notes"]


def _add_flop_fraction(row):
    macs = row.get("macs")
    row["flops_per_sample"] = flops_per_sample(macs, row.get("mode")) if macs else None
    row["peak_tflops"] = row["flop_fraction"] = None
    if row["device"] != "cuda" or not macs:
        return
    math_mode = "16bit" if row["precision"] == "mixed" else FLOAT32_PEAK
    row["peak_tflops"], row["peak_basis"] = peak_tflops(row.get("device_name"), math_mode), math_mode
    fraction = flop_fraction(row.get("samples_per_s"), macs, row.get("mode"), row["peak_tflops"])
    row["flop_fraction"] = round(fraction, 5) if fraction is not None else None
