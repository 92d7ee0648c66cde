"""The torch engine on a GPU: captured-graph training is correct, and how fast it is against native PyTorch.

    PYTHONPATH=<checkout> python benchmarks/gpu_engine_check.py [--device cuda|cpu] [--models lenet5,convnet2,...]
        [--batch-size 256] [--steps 400] [--check-steps 20] [--budget 230]

For each model (default lenet5, convnet2, resnet18 with ``small_stem``, lstm; ``kzoo/bench/native_torch.py``'s
networks), in a child process of its own with a time limit (a hung or crashed model costs its share only):

* ``check``: two copies of the model from the same weights train ``--check-steps`` full batches plus one partial
  batch (the same shuffled batches) and validate, once with ``KZOO_CUDA_GRAPHS=0`` (the eager engine) and once
  captured; the line gives the largest absolute difference over all weights (batch-norm statistics included),
  ``iterations`` and the losses, how the step ran (``graph``, else why not), and the captured inference forward
  against the same inference plan run eagerly (and against ``model(x)``, which folding and TF32 move a little). Dropout rates are set to 0 here (a graph draws its random numbers at other offsets of
  the generator). cuDNN is made deterministic for this part, so both runs use the same kernels; TF32 (see
  ``tf32`` in the ``env`` line) is the same on both sides.
* ``throughput``: the engine (one run, as ``kzoo train`` runs an epoch) against the hand-written eager PyTorch
  loop, interleaved in rounds in this process (``train_throughput.py``'s relay: each side's clock runs only
  while it trains), after ``--warmup`` steps each; ``ratio`` is the median of the per-round ratios. It runs
  captured, then with ``KZOO_CUDA_GRAPHS=0`` (``engine_eager``) for comparison.

Every result is one JSON line on stdout, also appended to ``$OUT/gpu-engine.jsonl`` (when ``OUT`` is set);
errors and time-outs too. With ``--device cpu`` (a smoke test of these code paths) the "captured" side is the
engine over its static buffers without a graph (``torch_cuda_graph.BUFFERS``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = ("lenet5", "convnet2", "resnet18", "lstm")
TARGETS = {"lenet5": 1.5, "lstm": 1.5, "resnet18": 1.0, "convnet2": 1.0}  # engine / native eager, issue 26


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=400, help="timed steps per side")
    p.add_argument("--warmup", type=int, default=16)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--check-steps", type=int, default=20)
    p.add_argument("--budget", type=float, default=230, help="seconds for everything (each model gets a share)")
    p.add_argument("--no-eager", action="store_true", help="skip the eager engine's throughput")
    p.add_argument("--one", help=argparse.SUPPRESS)  # the child: one model
    return p.parse_args(argv)


def emit(record):
    line = json.dumps(record)
    print(line, flush=True)
    out = os.environ.get("OUT")
    if out and not record.get("_child"):
        with open(os.path.join(out, "gpu-engine.jsonl"), "a") as f:
            f.write(line + "\n")


# -- the child: one model ---------------------------------------------------------------------------------------


def _setup(args):
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    sys.path[:0] = [ROOT, HERE]
    from kzoo.backend import set_backend

    set_backend("torch")
    if args.device == "cpu":
        from kzoo.engine import torch_cuda_graph

        torch_cuda_graph.default_mode = lambda device: torch_cuda_graph.BUFFERS  # the graph's data flow


def _compiled(name, without_dropout=False):
    import keras

    import kzoo
    from kzoo.tasks.classification import ClassificationTask
    from kzoo.bench.native_torch import KZOO_OPTIONS

    net = kzoo.create_model(name, input_shape=(28, 28, 1), num_classes=10, **KZOO_OPTIONS.get(name, {}))
    if without_dropout:
        for layer in net._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
    task = ClassificationTask()
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss=task.loss("sparse_cce"), metrics=task.metrics("sparse_cce"))
    return net


def check(args, name, x, y):
    """Eager engine vs captured engine from the same weights and batches; captured inference vs Keras."""
    import numpy as np
    import torch

    from kzoo.engine import torch_cuda_graph
    from kzoo.engine.forward import inference_forward
    from kzoo.engine.loops import seed_everything
    from kzoo.engine.torch_graph import compile_graph
    from kzoo.engine.torch_inference import InferencePlan
    from kzoo.engine.torch_loop import FastTorchLoop

    steps, bs = min(args.check_steps, max(args.steps, 4)), args.batch_size
    n, nv = steps * bs + bs // 2, 2 * bs + bs // 3  # a partial last batch in training and validation
    xt, yt, xv, yv = x[:n], y[:n], x[n:n + nv], y[n:n + nv]
    seed_everything(0)
    nets = [_compiled(name, without_dropout=True), _compiled(name, without_dropout=True)]
    nets[1].set_weights(nets[0].get_weights())
    deterministic = torch.backends.cudnn.deterministic
    torch.backends.cudnn.deterministic = True
    histories, loops, seconds = [], [], []
    try:
        for net, flag in zip(nets, ("0", "1")):
            os.environ[torch_cuda_graph.ENV] = flag
            loop = FastTorchLoop()
            start = time.perf_counter()
            history = loop.run(net, xt, yt, validation_data=(xv, yv), epochs=1, initial_epoch=0, batch_size=bs,
                               callbacks=[])
            seconds.append(round(time.perf_counter() - start, 2))
            histories.append(history.history)
            loops.append(loop)
    finally:
        torch.backends.cudnn.deterministic = deterministic
        os.environ.pop(torch_cuda_graph.ENV, None)
    eager, captured = nets
    diffs = [float(np.max(np.abs(a - b))) if a.size else 0.0
             for a, b in zip(eager.get_weights(), captured.get_weights())]
    scale = max(float(np.max(np.abs(a))) for a in eager.get_weights() if a.size)
    forward = inference_forward(captured)
    probe = x[:bs]
    outputs = [forward(probe) for _ in range(4)]  # warm-up x2, capture, replay
    probe_t = torch.as_tensor(probe, device=captured.weights[0].value.device)
    with torch.inference_mode():  # the same inference plan, eagerly: the same kernels (folded batch norm, TF32)
        plan_out = InferencePlan(compile_graph(captured)).forward(probe_t).float().cpu().numpy()
    with torch.no_grad():
        keras_out = np.asarray(captured(probe_t, training=False).detach().cpu())
    step = loops[1].captured
    max_diff = max(diffs)
    return {
        "kind": "check", "model": name, "device": args.device, "batch_size": bs, "steps": steps + 1,
        "step_mode": step.mode, "step_reason": step.reason,
        "weights_max_abs_diff": max_diff, "weights_max_abs": scale,
        "iterations": [int(net.optimizer.iterations.numpy()) for net in nets],
        "loss": [h["loss"][-1] for h in histories], "val_loss": [h["val_loss"][-1] for h in histories],
        "val_accuracy": [h["val_accuracy"][-1] for h in histories],
        "inference_max_abs_diff_vs_eager_plan": float(np.max(np.abs(outputs[-1] - plan_out))),
        "inference_max_abs_diff_vs_keras": float(np.max(np.abs(outputs[-1] - keras_out))),  # folding, TF32
        "seconds_eager_captured": seconds,
        "ok": bool(max_diff <= 1e-4 and len({int(net.optimizer.iterations.numpy()) for net in nets}) == 1
                   and np.allclose(outputs[-1], plan_out, rtol=1e-5, atol=1e-6)),
    }


def throughput(args, name, x, y, captured=True):
    """The engine vs the native eager loop, interleaved (train_throughput.py's relay, native in-process)."""
    import torch

    from kzoo.engine import torch_cuda_graph
    from kzoo.bench.native_torch import NativeLoop
    from train_throughput import KzooSide, make_relay

    os.environ[torch_cuda_graph.ENV] = "1" if captured else "0"
    try:
        side = KzooSide(argparse.Namespace(model=name, batch_size=args.batch_size, engine="torch"), x, y)
        native = NativeLoop(name, x, y, device=args.device)

        def run_native(steps):
            start = time.perf_counter()
            native.run(steps, args.batch_size)  # synchronizes at its end on CUDA
            return time.perf_counter() - start

        run_native(args.warmup)
        rounds = max(1, min(args.rounds, args.steps))
        per_round = [args.steps // rounds + (1 if r < args.steps % rounds else 0) for r in range(rounds)]
        relay = make_relay({"warmup": args.warmup, "rounds": [(s, r % 2 == 0) for r, s in enumerate(per_round)]},
                           run_native)
        side.run(args.warmup + args.steps, relay)
    finally:
        os.environ.pop(torch_cuda_graph.ENV, None)
    segments = relay.segments
    ratios = [(ks / kt) / (ns / nt) for ks, kt, ns, nt in segments]
    kzoo_sps = sum(s[0] for s in segments) * args.batch_size / sum(s[1] for s in segments)
    native_sps = sum(s[2] for s in segments) * args.batch_size / sum(s[3] for s in segments)
    step = side.loop.captured
    ratio = round(statistics.median(ratios), 3)
    record = {
        "kind": "throughput", "model": name, "engine": "torch, captured" if captured else "torch, eager",
        "device": args.device, "batch_size": args.batch_size, "steps": args.steps, "rounds": len(segments),
        "step_mode": getattr(step, "mode", None), "step_reason": getattr(step, "reason", None),
        "kzoo_samples_per_s": round(kzoo_sps, 1), "native_samples_per_s": round(native_sps, 1),
        "ratio": ratio, "ratio_of_totals": round(kzoo_sps / native_sps, 3),
        "round_ratios": [round(r, 3) for r in ratios], "notes": side.messages,
    }
    if captured:
        record.update(target=TARGETS.get(name), met=ratio >= TARGETS.get(name, 1.0))
    if args.device == "cuda":
        record["peak_gpu_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
    return record


def child(args):
    _setup(args)
    from train_throughput import load_data

    name = args.one
    x, y = load_data()
    parts = [("check", lambda: check(args, name, x, y)),
             ("throughput", lambda: throughput(args, name, x, y, captured=True))]
    if not args.no_eager:
        parts.append(("throughput eager", lambda: throughput(args, name, x, y, captured=False)))
    for part, fn in parts:
        try:
            record = fn()
        except Exception as error:  # noqa: BLE001 (reported, and the next part still runs)
            record = {"kind": part, "model": name, "device": args.device,
                      "error": f"{type(error).__name__}: {str(error)[:500]}"}
        print(json.dumps(record), flush=True)


# -- the parent: one child per model, each with its share of the budget -----------------------------------------


def environment(args):
    record = {"kind": "env", "device": args.device, "python": sys.version.split()[0]}
    os.environ.setdefault("KERAS_BACKEND", "torch")  # keras's own default would import tensorflow
    try:
        import torch

        record.update(torch=torch.__version__, cuda_available=torch.cuda.is_available(),
                      tf32={"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32})
        if args.device == "cuda" and torch.cuda.is_available():
            record["gpu"] = torch.cuda.get_device_name(0)
        import keras

        record["keras"] = keras.__version__
    except Exception as error:  # noqa: BLE001
        record["error"] = f"{type(error).__name__}: {error}"
    return record


def main(argv=None):
    args = parse(argv)
    if args.one:
        return child(args)
    emit(environment(args))
    models = [m for m in args.models.split(",") if m]
    deadline = time.monotonic() + args.budget
    for k, name in enumerate(models):
        left = deadline - time.monotonic()
        share = left / (len(models) - k)
        if share < 5:
            emit({"kind": "skipped", "model": name, "error": f"no time left in --budget {args.budget}"})
            continue
        command = [sys.executable, os.path.abspath(__file__), "--one", name] + [
            a for a in (argv if argv is not None else sys.argv[1:])]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
        start = time.monotonic()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=share, env=env)
            failure = None if done.returncode == 0 else f"exit {done.returncode}"
            stdout, stderr = done.stdout, done.stderr
        except subprocess.TimeoutExpired as expired:
            decode = lambda b: b.decode(errors="replace") if isinstance(b, bytes) else (b or "")  # noqa: E731
            stdout, stderr, failure = decode(expired.stdout), decode(expired.stderr), f"timed out after {share:.0f} s"
        kinds = set()
        for line in stdout.splitlines():
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                kinds.add(record.get("kind"))
                emit(record)
        if failure:
            emit({"kind": "error", "model": name, "error": failure, "seconds": round(time.monotonic() - start, 1),
                  "parts_reported": sorted(kinds), "stderr_tail": stderr[-1500:]})


if __name__ == "__main__":
    main()
