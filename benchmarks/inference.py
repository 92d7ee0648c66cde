"""Inference speed: Keras predict, kzoo's predict/evaluate path, exported ONNX and SavedModel, native PyTorch.

    python benchmarks/inference.py --backend torch [--models lenet5,resnet18,lstm] [--repeats 30] [--json]

For each model (kzoo's at 28x28x1, the same layer sizes as the hand-written ``kzoo/bench/native_torch.py``; random
weights: speed does not depend on them) and batch sizes 1 and 64, in one process:

* ``keras_predict``: ``model.predict(x, batch_size=B)`` on ``--backend``;
* ``kzoo``: ``kzoo.tasks.base.predict_proba`` over ``kzoo.engine.forward.inference_forward``, the path
  ``kzoo evaluate`` and ``kzoo predict`` run;
* ``onnxruntime``: the file ``kzoo export --format onnx`` writes (verified), in onnxruntime;
* ``onnxruntime_int8``: the file ``kzoo export --format onnx --quantize int8`` writes (calibrated on the embedded
  MNIST training digits, verified by top-1 agreement), in onnxruntime;
* ``tf_saved_model``: the file ``kzoo export --format saved_model`` writes, called through ``serve``;
* ``native_torch``: the native PyTorch model in eager mode under ``torch.inference_mode()``.

Each figure is the median over ``--repeats`` calls after warm-up calls, the runners of one model and batch
taking turns call by call (a load change on a shared machine falls on all of them): the latency of one call
(ms) and samples per second. The ratio to ``native_torch`` at the same batch is printed last. The exports are written
once into ``--cache`` (default: ``kzoo-inference-benchmark`` in the temporary folder) and reused.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

BATCHES = (1, 64)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "torch"),
                   choices=["torch", "tensorflow", "jax"])
    p.add_argument("--models", default="lenet5,resnet18,lstm")
    p.add_argument("--repeats", type=int, default=30, help="timed calls per figure (after 3 warm-up calls)")
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "kzoo-inference-benchmark"))
    p.add_argument("--threads", type=int, default=0, help="threads for every runtime (0: their default)")
    p.add_argument("--json", action="store_true", help="print one JSON object per figure")
    return p.parse_args(argv)


def timed(calls, repeats):
    """``{name: median seconds of one call}``, after three warm-up calls each.

    The calls take turns (one round calls each once), so a change in the machine's load falls on every runner
    alike and the ratios stay fair on a shared machine.
    """
    for call in calls.values():
        for _ in range(3):
            call()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def runners(name, args):
    """``{runner: function(x_nhwc) -> outputs}`` for one model; x is float32 (B, 28, 28, 1)."""
    from kzoo.backend import set_backend

    set_backend(args.backend)
    import torch

    import kzoo
    from kzoo.bench import native_torch as native
    from kzoo.engine.forward import inference_forward
    from kzoo.tasks.base import predict_proba

    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = os.path.join(args.cache, f"{name}.keras")
    model = kzoo.load_model(checkpoint, compile=False)
    shape = tuple(model.inputs[0].shape[1:])
    reshape = (lambda x: x.reshape(len(x), 28, 28)) if len(shape) == 2 else (lambda x: x)
    table = {
        "keras_predict": lambda x: model.predict(reshape(x), batch_size=len(x), verbose=0),
        "kzoo": lambda x: predict_proba(model, reshape(x), batch_size=len(x), forward=inference_forward),
    }
    onnx_path = os.path.join(args.cache, f"{name}.onnx")
    import onnxruntime

    session_options = onnxruntime.SessionOptions()
    # onnxruntime's pool spins on the cores for a while after each call by default; with the runners taking
    # turns call by call, that spinning slows the next runner (torch's LeNet-5 at batch 1: 0.3 ms alone, 7.7 ms
    # right after an onnxruntime call on 2 cores)
    session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if args.threads:
        session_options.intra_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(onnx_path, session_options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    table["onnxruntime"] = lambda x: session.run(None, {input_name: reshape(x)})[0]
    int8_path = os.path.join(args.cache, f"{name}.int8.onnx")
    if os.path.exists(int8_path):  # a model the quantizer could not take has no int8 file (printed at export)
        int8 = onnxruntime.InferenceSession(int8_path, session_options, providers=["CPUExecutionProvider"])
        table["onnxruntime_int8"] = lambda x: int8.run(None, {input_name: reshape(x)})[0]
    saved_path = os.path.join(args.cache, f"{name}_saved_model")
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    loaded = tf.saved_model.load(saved_path)
    table["tf_saved_model"] = lambda x: loaded.serve(reshape(x)).numpy()
    net = native.make(name).eval()

    def native_eager(x):
        with torch.inference_mode():
            return torch.softmax(net(torch.from_numpy(x).permute(0, 3, 1, 2)), -1).numpy()

    table["native_torch"] = native_eager
    return table


def prepare(names, args):
    """Save each model once and export it to ONNX and SavedModel (one subprocess per format for all of them)."""
    from kzoo.backend import set_backend

    set_backend(args.backend)
    import kzoo
    from kzoo.bench import native_torch as native

    os.makedirs(args.cache, exist_ok=True)
    missing = {"onnx": [], "saved_model": [], "int8": []}
    for name in names:
        path = os.path.join(args.cache, f"{name}.keras")
        if not os.path.exists(path):
            shape = (28, 28) if name in ("lstm", "gru") else (28, 28, 1)
            kzoo.create_model(name, input_shape=shape, num_classes=10, **native.KZOO_OPTIONS.get(name, {})).save(path)
        for fmt, exported in (("onnx", f"{name}.onnx"), ("saved_model", f"{name}_saved_model"),
                              ("int8", f"{name}.int8.onnx")):
            if not os.path.exists(os.path.join(args.cache, exported)):
                missing[fmt].append(path)
    for fmt, sources in missing.items():
        quantize = "int8" if fmt == "int8" else None
        # random weights give near-tied classes that int8 rounding swaps: speed is what is measured here
        # (docs/export.md has the agreement of trained models)
        results = kzoo.export.export_many(sources, ["onnx" if quantize else fmt], limit=100, overwrite=True,
                                          quantize=quantize, min_agreement=0.0 if quantize else None) if sources else []
        for result in results:
            if "error" in result and quantize:
                print(f"no int8 file: {result['message']}", file=sys.stderr)
            elif "error" in result:
                raise SystemExit(result["message"])


def main(argv=None):
    args = parse(argv)
    rng = np.random.default_rng(0)
    rows = []
    names = args.models.split(",")
    prepare(names, args)
    load_start = os.getloadavg()
    for name in names:
        table = runners(name, args)
        for batch in BATCHES:
            x = rng.random((batch, 28, 28, 1), dtype=np.float32)
            figures = timed({runner: (lambda call=call: call(x)) for runner, call in table.items()}, args.repeats)
            for runner, seconds in figures.items():
                row = {"model": name, "backend": args.backend, "runner": runner, "batch": batch,
                       "latency_ms": round(1000 * seconds, 3), "samples_per_s": round(batch / seconds, 1),
                       "vs_native_torch": round(figures["native_torch"] / seconds, 2)}
                rows.append(row)
                if args.json:
                    print(json.dumps(row), flush=True)
    print("load average (1, 5, 15 min) at start %.1f %.1f %.1f, at end %.1f %.1f %.1f"
          % (*load_start, *os.getloadavg()), file=sys.stderr if args.json else sys.stdout)
    if not args.json:
        print(f"{'model':10} {'batch':>5} {'runner':16} {'latency ms':>11} {'samples/s':>10} {'x native':>9}")
        for row in rows:
            print(f"{row['model']:10} {row['batch']:>5} {row['runner']:16} {row['latency_ms']:>11.3f} "
                  f"{row['samples_per_s']:>10.1f} {row['vs_native_torch']:>9.2f}")


if __name__ == "__main__":
    main()
