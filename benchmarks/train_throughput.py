"""kzoo's training engine vs a hand-written native PyTorch loop, same architecture, same data, one process.

    python benchmarks/train_throughput.py --model lenet5 --backend torch [--device cpu|cuda] [--batch-size 64]
        [--steps 128] [--rounds N] [--threads N] [--engine auto|fit|torch|tf|xla] [--mixed-precision] [--json]

Both loops train the same model (``kzoo/bench/native_torch.py`` mirrors kzoo's layer sizes) on the embedded MNIST
digits at batch ``--batch-size``. The native loop runs in its own (spawned) process, so kzoo's backend
(TensorFlow's or XLA's thread pools, allocators) never shares a process with it; the two take turns, one idle
while the other runs. kzoo's side is ONE call of the engine ``kzoo train`` uses (``choose_loop``; its ``run``
with kzoo's per-batch callbacks) over ``--warmup`` + ``--steps`` steps, as in a real epoch: a relay callback
pauses kzoo's clock at each round boundary and lets the native loop run its round (the order flips every
round). The warm-up steps (and the engine's set-up before them) are excluded for both. The median over rounds
of the per-round ratio kzoo/native of samples per second (robust to load spikes on a shared machine) is
printed last as ``ratio=1.23``, after the totals. Peak RSS (``ru_maxrss``) is reported for each process:
kzoo's includes its backend, the native one torch only.

``--mixed-precision``: kzoo trains under the mixed dtype policy ``kzoo train --mixed-precision`` sets (bfloat16
on a CPU), the native loop under ``torch.autocast`` in the same dtype (``GradScaler`` with float16), and a third
process trains kzoo's float32 engine in the same rounds: ``mixed_over_float32`` is the median per-round ratio of
kzoo's mixed and float32 samples per second.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "torch"),
                   choices=["torch", "tensorflow", "jax"])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=128, help="timed steps per loop (after warm-up)")
    p.add_argument("--warmup", type=int, default=16,
                   help="untimed steps per loop first (with several steps per call, use a multiple of it)")
    p.add_argument("--rounds", type=int, default=0, help="alternations of the two loops (default: every 16 steps)")
    p.add_argument("--threads", type=int, default=0,
                   help="intra-op threads of every framework in the process (default: the frameworks' own)")
    p.add_argument("--engine", default="auto", help="kzoo engine: auto (what `kzoo train` uses), fit, torch, tf, xla")
    p.add_argument("--mixed-precision", action="store_true",
                   help="kzoo under its mixed policy, native under torch.autocast, and kzoo float32 in a third process")
    p.add_argument("--json", action="store_true", help="also print one JSON line of results")
    return p.parse_args(argv)


def load_data():
    from kzoo.data import load_dataset
    from kzoo.tasks.base import images_to_float

    data = load_dataset("mnist_embedded")
    return images_to_float(data.x_train), data.y_train.astype("int64")


class KzooSide:
    def __init__(self, args, x, y, mixed=False):
        import keras
        import numpy as np

        import kzoo
        from kzoo.engine import precision
        from kzoo.engine.loops import choose_loop, seed_everything
        from kzoo.tasks.classification import ClassificationTask
        from kzoo.bench.native_torch import KZOO_OPTIONS

        seed_everything(0)
        self.x, self.y, self.batch_size = x, y, args.batch_size
        before = precision.use_mixed_policy(keras.backend.backend()) if mixed else keras.config.dtype_policy()
        self.net = kzoo.create_model(args.model, input_shape=(28, 28, 1), num_classes=10,
                                     **KZOO_OPTIONS.get(args.model, {}))
        task = ClassificationTask()
        self.net.compile(optimizer=keras.optimizers.Adam(1e-3), loss=task.loss("sparse_cce"),
                         metrics=task.metrics("sparse_cce"))
        precision.restore_policy(before)  # as after a `kzoo train --mixed-precision` run: the layers keep theirs
        self.policy = self.net.dtype_policy.name
        self.messages = []
        self.loop = choose_loop(args.engine, keras.backend.backend(), self.net, None, notify=self.messages.append)
        self.rng = np.random.default_rng(0)

    def run(self, steps, relay):
        """One engine run of ``steps`` steps (one epoch, as ``kzoo train`` runs it); ``relay`` sees every batch."""
        from kzoo.engine.callbacks import EpochClock, StopOnNaN

        n = steps * self.batch_size
        idx = self.rng.choice(len(self.y), size=n, replace=n > len(self.y))
        self.loop.run(self.net, self.x[idx], self.y[idx], validation_data=None, epochs=1, initial_epoch=0,
                      batch_size=self.batch_size, callbacks=[EpochClock(n), StopOnNaN(), relay])


def make_relay(plan, run_native):
    """A Keras callback that times kzoo's segments between round boundaries and runs the native rounds there.

    ``plan`` lists (round steps, native first?) after the warm-up. With several steps per call (the tf
    engine), batches are seen in groups, so each segment's own step count is used for its rate.
    """
    import keras

    class Relay(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.segments = []  # (kzoo steps, kzoo seconds, native steps, native seconds)
            self.done = 0
            self.round = -1
            self.boundary = plan["warmup"]
            self.native_result = None

        def _open(self):
            """Start round r: native first if its turn, then kzoo's clock."""
            self.round += 1
            if self.round < len(plan["rounds"]):
                steps, native_first = plan["rounds"][self.round]
                self.native_result = (steps, run_native(steps)) if native_first else None
                self.boundary += steps
                self.start_step, self.start = self.done, time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            self.done = batch + 1
            if self.done < self.boundary or self.round >= len(plan["rounds"]):
                return
            if self.round >= 0:
                steps, native_first = plan["rounds"][self.round]
                kzoo_steps, kzoo_seconds = self.done - self.start_step, now - self.start
                native = self.native_result if native_first else (steps, run_native(steps))
                self.segments.append((kzoo_steps, kzoo_seconds, *native))
            self._open()

    return Relay()


def _threads(args):
    if args.threads:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                                   + ("true" if args.threads > 1 else "false")).strip()
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(args.threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")



def native_worker(conn, args):
    """The native loop in its own process: no framework of kzoo's backend shares its memory or threads."""
    _threads(args)
    import torch

    from kzoo.bench.native_torch import NativeLoop

    if args.threads:
        torch.set_num_threads(args.threads)
    x, y = load_data()
    loop = NativeLoop(args.model, x, y, device=args.device, mixed=args.mixed_precision)
    conn.send(torch.get_num_threads())
    while (steps := conn.recv()) is not None:
        start = time.perf_counter()
        loop.run(steps, args.batch_size)
        conn.send(time.perf_counter() - start)
    conn.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def float32_worker(conn, args):
    """kzoo's float32 engine in its own process, one engine run paced by ``conn``: each message is a number of
    steps to train, answered with ``(steps trained, seconds)`` (several steps per call: whole calls)."""
    _threads(args)
    from kzoo.backend import set_backend

    set_backend(args.backend)
    _set_threads(args)
    import keras

    side = KzooSide(args, *load_data())

    class Pacer(keras.callbacks.Callback):
        total = args.warmup + args.steps

        def on_train_begin(self, logs=None):
            self.done, self.target = 0, 0
            self._next()

        def _next(self):
            self.first, self.target = self.done, self.target + conn.recv()
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.done = batch + 1
            if self.done >= self.target:
                conn.send((self.done - self.first, time.perf_counter() - self.start))
                if self.done < self.total:
                    self._next()

    conn.send(side.policy)
    side.run(args.warmup + args.steps, Pacer())
    conn.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _set_threads(args):
    if args.threads and args.backend == "torch":
        import torch

        torch.set_num_threads(args.threads)
    if args.threads and args.backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)


def main(argv=None):
    args = parse(argv)
    args.rounds = args.rounds or max(2, args.steps // 16)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # both loops on the CPU, even on a GPU machine
    _threads(args)
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    worker = context.Process(target=native_worker, args=(there, args), daemon=True)
    worker.start()
    native_threads = here.recv()
    reference, reference_segments = None, []
    if args.mixed_precision:
        reference, there_ref = context.Pipe()
        reference_worker = context.Process(target=float32_worker, args=(there_ref, args), daemon=True)
        reference_worker.start()
        reference_policy = reference.recv()

    from kzoo.backend import set_backend

    set_backend(args.backend)
    _set_threads(args)
    x, y = load_data()
    kzoo = KzooSide(args, x, y, mixed=args.mixed_precision)

    def run_native(steps):
        here.send(steps)
        seconds = here.recv()
        if reference is not None:  # kzoo's float32 engine takes its turn next to the native loop
            reference.send(steps)
            reference_segments.append(reference.recv())
        return seconds

    run_native(args.warmup)
    per_round = [args.steps // args.rounds + (1 if r < args.steps % args.rounds else 0) for r in range(args.rounds)]
    plan = {"warmup": args.warmup, "rounds": [(steps, r % 2 == 0) for r, steps in enumerate(per_round)]}
    relay = make_relay(plan, run_native)
    kzoo.run(args.warmup + args.steps, relay)
    segments = relay.segments
    timed = {"kzoo": sum(seg[1] for seg in segments), "native": sum(seg[3] for seg in segments)}
    counted = {"kzoo": sum(seg[0] for seg in segments), "native": sum(seg[2] for seg in segments)}
    round_ratios = [(ks / kt) / (ns / nt) for ks, kt, ns, nt in segments]
    mixed = {}
    if reference is not None:
        float32 = reference_segments[1:]  # the first one is the warm-up
        over = [(ks / kt) / (fs / ft) for (ks, kt, *_), (fs, ft) in zip(segments, float32)]
        reference_rss = reference.recv()
        mixed = {"kzoo_policy": kzoo.policy, "float32_policy": reference_policy,
                 "kzoo_float32_samples_per_s": round(sum(f[0] for f in float32) * args.batch_size
                                                     / sum(f[1] for f in float32), 1),
                 "mixed_over_float32": round(statistics.median(over), 3),
                 "mixed_over_float32_rounds": [round(r, 3) for r in over],
                 "kzoo_float32_peak_rss_mb": round(reference_rss, 1)}
        reference_worker.join(timeout=30)
    here.send(None)
    native_rss = here.recv()
    worker.join(timeout=30)
    kzoo_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sps = {name: counted[name] * args.batch_size / seconds for name, seconds in timed.items()}
    import keras

    result = {
        "model": args.model, "backend": keras.backend.backend(), "engine": kzoo.loop.name, "device": args.device,
        "batch_size": args.batch_size, "steps": args.steps, "rounds": len(segments),
        "steps_per_call": getattr(kzoo.net, "steps_per_execution", 1),
        "kzoo_samples_per_s": round(sps["kzoo"], 1), "native_samples_per_s": round(sps["native"], 1),
        "ratio": round(statistics.median(round_ratios), 3),
        "ratio_of_totals": round(sps["kzoo"] / sps["native"], 3),
        "round_ratios": [round(r, 3) for r in round_ratios],
        "kzoo_peak_rss_mb": round(kzoo_rss, 1), "native_peak_rss_mb": round(native_rss, 1),
        "threads": args.threads or "default", "native_torch_threads": native_threads,
        "load_avg_1m": round(os.getloadavg()[0], 2), "notes": kzoo.messages,
        "mixed_precision": args.mixed_precision, "native_autocast": str(_autocast_dtype(args)), **mixed,
    }
    for message in kzoo.messages:
        print(f"note: {message}")
    print(f"model={args.model} backend={result['backend']} engine={result['engine']} device={args.device} "
          f"batch={args.batch_size} steps={args.steps} rounds={len(segments)} steps_per_call={result['steps_per_call']}")
    print(f"peak_rss_mb kzoo={result['kzoo_peak_rss_mb']} native={result['native_peak_rss_mb']}")
    print(f"kzoo={sps['kzoo']:.1f} samples/s native_torch={sps['native']:.1f} samples/s "
          f"(ratio of totals {result['ratio_of_totals']:.2f}; ratio below: median of {len(segments)} rounds)")
    if mixed:
        print(f"kzoo {kzoo.policy} / kzoo float32 = {mixed['mixed_over_float32']:.2f} (median of rounds; float32 "
              f"{mixed['kzoo_float32_samples_per_s']:.1f} samples/s); native under autocast {result['native_autocast']}")
    if args.json:
        print(json.dumps(result))
    print(f"ratio={result['ratio']:.2f}")


if __name__ == "__main__":
    main()
