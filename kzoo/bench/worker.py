"""One benchmark configuration in its own process: ``python -m kzoo.bench.worker SPEC_JSON``.

:func:`kzoo.bench.bench` starts one process per configuration (one Keras backend per process; peak memory is
the configuration's own) and reads the rows this module prints on its last line, after :data:`MARKER`. A spec
is ``{"runner": "kzoo" | "native_torch", "model", "backend", "engine", "precision", "device", "batch_size",
"steps", "warmup", "inference", "input_shape", "num_classes", "options"}``. Inference is measured before
training (on CUDA the peak is reset in between; on a CPU the training peak includes the inference one).
"""

import json
import math
import os
import resource
import statistics
import sys
import time

import numpy as np

MARKER = "KZOO_BENCH_ROWS "
INFERENCE_WARMUP = 3


def random_data(shape, num_classes, samples, seed=0):
    """Uniform [0, 1) float32 inputs and integer labels: speed does not depend on the values."""
    rng = np.random.default_rng(seed)
    return rng.random((samples, *shape), dtype=np.float32), rng.integers(0, num_classes, samples).astype("int64")


def timed_calls(call, calls):
    """Median seconds of one ``call()`` over ``calls`` calls after a few warm-up calls."""
    for _ in range(INFERENCE_WARMUP):
        call()
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def inference_row(spec, seconds, **extra):
    batch = spec["batch_size"]
    return {"mode": "inference", "samples_per_s": round(batch / seconds, 1), "latency_ms": round(1000 * seconds, 3),
            "steps": spec["steps"], **extra}


def peak_memory(backend, device):
    """``(megabytes, kind)``: the process's peak RSS on a CPU, the device allocator's peak on CUDA."""
    if device == "cuda":
        try:
            if backend == "torch":
                import torch

                return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_allocated"
            if backend == "jax":
                import jax

                stats = jax.devices()[0].memory_stats() or {}
                return stats.get("peak_bytes_in_use", math.nan) / 2**20, "jax_peak_bytes_in_use"
            if backend == "tensorflow":
                import tensorflow as tf

                return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, "tf_gpu_peak"
        except Exception:  # an informative figure only
            return None, "unknown"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss"


def reset_peak_memory(backend, device):
    if device != "cuda":
        return
    try:
        if backend == "torch":
            import torch

            torch.cuda.reset_peak_memory_stats()
        elif backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")
    except Exception:  # jax has no reset: its training peak includes the inference one
        pass


def device_name(backend, device):
    if device != "cuda":
        import platform

        return platform.processor() or platform.machine()
    try:
        if backend in ("torch", "native"):
            import torch

            return torch.cuda.get_device_name(0)
        if backend == "jax":
            import jax

            return jax.devices()[0].device_kind
        if backend == "tensorflow":
            import tensorflow as tf

            gpu = tf.config.list_physical_devices("GPU")[0]
            return tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
    except Exception:
        return "unknown"
    return "unknown"


def _round_up(n, multiple):
    return -(-n // multiple) * multiple


class StepClock:
    """A Keras callback that starts the clock once ``warmup`` steps are done (after a device sync)."""

    def __new__(cls, warmup, sync):
        import keras

        class _Clock(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.start = None
                self.started_at_step = None

            def on_train_batch_end(self, batch, logs=None):
                if self.start is None and batch + 1 >= warmup:
                    sync(logs)
                    self.start, self.started_at_step = time.perf_counter(), batch + 1

        return _Clock()


def run_kzoo(spec):
    from kzoo.backend import set_backend

    backend = set_backend(spec["backend"])
    import keras

    from kzoo.engine import config as cfg
    from kzoo.engine.callbacks import StopOnNaN
    from kzoo.engine.loops import TensorflowLoop, choose_loop, seed_everything, steps_per_call
    from kzoo.engine.forward import inference_forward
    from kzoo.engine.precision import use_mixed_policy
    from kzoo.factory import create_model
    from kzoo.summary import summarize
    from kzoo.tasks.base import predict_proba
    from kzoo.tasks.classification import ClassificationTask

    device, mixed = spec["device"], spec["precision"] == "mixed"
    seed_everything(0)
    if mixed:  # what kzoo.train does with mixed_precision=True
        use_mixed_policy(keras.backend.backend())
    net = create_model(spec["model"], input_shape=spec["input_shape"], num_classes=spec["num_classes"],
                       **(spec["options"] or {}))
    shape, classes = tuple(net.inputs[0].shape[1:]), int(net.outputs[0].shape[-1])
    batch = spec["batch_size"]
    common = {"dtype_policy": keras.config.dtype_policy().name, "macs": summarize(net)["macs"],
              "input_shape": list(shape), "num_classes": classes}
    rows = []
    if spec["inference"]:
        x_batch, _ = random_data(shape, classes, batch, seed=1)
        seconds = timed_calls(lambda: predict_proba(net, x_batch, batch_size=batch, forward=inference_forward), spec["steps"])
        memory, kind = peak_memory(backend, device)
        rows.append(inference_row(spec, seconds, engine_used="predict", peak_memory_mb=memory, memory_kind=kind,
                                  **common))
        reset_peak_memory(backend, device)

    task = ClassificationTask()
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss=task.loss("sparse_cce"),
                metrics=task.metrics("sparse_cce"))
    config = cfg.resolve({"model": spec["model"], "backend": backend, "engine": spec["engine"],
                          "batch_size": batch, "mixed_precision": mixed, "seed": 0})
    notes = []
    loop = choose_loop(spec["engine"], backend, net, config, notify=notes.append)
    warmup, steps = spec["warmup"], spec["steps"]
    if isinstance(loop, TensorflowLoop):  # callbacks see every N-th step: whole calls on both sides of the clock
        per_call = steps_per_call(net, batch, accelerator=loop._accelerator())
        warmup, steps = _round_up(max(warmup, 1), per_call), _round_up(steps, per_call)
    x, y = random_data(shape, classes, (warmup + steps) * batch)
    sync = _sync(backend, device, net)
    clock = StepClock(warmup, sync)
    loop.run(net, x, y, validation_data=None, epochs=1, initial_epoch=0, batch_size=batch,
             callbacks=[StopOnNaN(), clock])
    sync(None)
    elapsed = time.perf_counter() - clock.start
    timed_steps = warmup + steps - clock.started_at_step
    memory, kind = peak_memory(backend, device)
    inner = getattr(loop, "_loop", None)
    rows.append({"mode": "train", "samples_per_s": round(timed_steps * batch / elapsed, 1), "steps": timed_steps,
                 "engine_used": loop.name, "loop": type(inner or loop).__name__, "peak_memory_mb": memory,
                 "memory_kind": kind, "notes": notes, **common})
    if spec["inference"] and backend == "torch" and not mixed:  # after the figures above: exporting costs memory
        exported = onnxruntime_row(spec, net, x_batch, common)
        if isinstance(exported, dict):
            rows.append(exported)
        else:
            notes.extend(exported)
    return rows


def onnxruntime_row(spec, net, x_batch, common):
    """The model as ``kzoo export --format onnx`` writes it (batch norm folded), timed in onnxruntime.

    Returns the inference row, or a list of notes saying why there is none (nothing when the ONNX packages are
    not installed). It runs in the kzoo torch process, after its figures, so it has no peak memory of its own.
    """
    import importlib.util
    import tempfile

    if any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxruntime", "onnxscript")):
        return []
    import keras
    import onnxruntime

    from kzoo.export.onnx import OnnxFormat

    available = onnxruntime.get_available_providers()
    provider = "CUDAExecutionProvider" if spec["device"] == "cuda" and "CUDAExecutionProvider" in available \
        else "CPUExecutionProvider"
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.onnx")
        signature = [keras.InputSpec(shape=(None, *x_batch.shape[1:]), dtype="float32", name="inputs")]
        try:
            OnnxFormat().write(net, path, signature)
        except Exception as exc:  # a model the exporter cannot take: said in the notes, the rest stands
            return [f"no onnxruntime row: the ONNX export failed ({type(exc).__name__}: {str(exc)[:200]})"]
        options = onnxruntime.SessionOptions()
        # onnxruntime's threads spin after each call by default, which slows whatever runs next on a small CPU
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(path, options, providers=[provider])
        name = session.get_inputs()[0].name
        seconds = timed_calls(lambda: session.run(None, {name: x_batch}), spec["steps"])
    return inference_row(spec, seconds, runner="onnxruntime", engine_used=provider, peak_memory_mb=None,
                         memory_kind="in the kzoo torch process", **common)


def _sync(backend, device, net):
    """A function that waits for the device's queued work (each backend its own way)."""
    def sync(logs):
        if backend == "torch" and device == "cuda":
            import torch

            torch.cuda.synchronize()
        elif backend == "jax":
            if logs is None:
                for variable in net.trainable_variables:
                    variable.value.block_until_ready()
            elif "loss" in logs:
                float(logs["loss"])  # the step's loss is ready once the step is
    return sync


def run_native(spec):
    import torch

    from kzoo.bench.native_torch import NativeLoop

    device, batch = spec["device"], spec["batch_size"]
    shape, classes = tuple(spec["input_shape"]), spec["num_classes"]
    x, y = random_data(shape, classes, (spec["warmup"] + spec["steps"]) * batch)
    loop = NativeLoop(spec["model"], x, y, device=device, mixed=spec["precision"] == "mixed")
    rows = []
    if spec["inference"]:
        x_batch = loop.x[:batch]
        seconds = timed_calls(lambda: loop.predict(x_batch).cpu().numpy(), spec["steps"])
        memory, kind = peak_memory("torch", device)
        rows.append(inference_row(spec, seconds, engine_used="eager", peak_memory_mb=memory, memory_kind=kind))
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
    loop.run(spec["warmup"], batch)
    start = time.perf_counter()
    loop.run(spec["steps"], batch)
    elapsed = time.perf_counter() - start
    memory, kind = peak_memory("torch", device)
    rows.append({"mode": "train", "samples_per_s": round(spec["steps"] * batch / elapsed, 1), "steps": spec["steps"],
                 "engine_used": "eager", "peak_memory_mb": memory, "memory_kind": kind})
    # the same network's MACs as kzoo counts them, after the figures (Keras is not part of the native peak RSS)
    from kzoo.summary import summary

    macs = summary(spec["model"], input_shape=shape, num_classes=classes, **(spec["options"] or {}))["macs"]
    return [{**row, "macs": macs} for row in rows]


def main(argv=None):
    spec = json.loads((argv or sys.argv[1:])[0])
    backend = "torch" if spec["runner"] == "native_torch" else spec["backend"]
    rows = run_native(spec) if spec["runner"] == "native_torch" else run_kzoo(spec)
    name = device_name("native" if spec["runner"] == "native_torch" else backend, spec["device"])
    load = round(os.getloadavg()[0], 2)  # other work on the machine moves every figure: each row says how much
    for row in rows:
        if row.get("peak_memory_mb") is not None:
            row["peak_memory_mb"] = round(row["peak_memory_mb"], 1)
        row.update(device_name=name, load_avg_1m=load, cpu_count=os.cpu_count())
    print(MARKER + json.dumps(rows), flush=True)


if __name__ == "__main__":
    main()
