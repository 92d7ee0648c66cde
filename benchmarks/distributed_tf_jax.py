"""Data-parallel training on simulated CPU devices: samples/s of 2 devices vs 1, tensorflow and jax.

    python benchmarks/distributed_tf_jax.py [--backend tensorflow|jax] [--model lenet5] [--batch-size 64]
        [--samples 2048] [--rounds 5] [--engine auto|fit|tf] [--json]

One process per backend, started with 2 simulated devices (``kzoo.backend.configure_devices``: 2 logical CPU
devices on tensorflow, 2 XLA host devices on jax). The same model is built twice, once on one device (no
strategy) and once inside kzoo's 2-device scope (``kzoo.engine.distributed.build_scope``), and each is trained
with the loop ``kzoo train`` would choose (``choose_loop``: on tensorflow the tf loop, which groups 16 steps per
call on one device but 1 under MirroredStrategy; on jax fit) on ``--samples`` embedded MNIST digits at global
batch ``--batch-size``. After one untimed warm-up epoch each, the two take turns for ``--rounds`` epochs; the
median of the per-round ratio 2 devices / 1 device is printed last as ``ratio=0.87``. The simulated devices
share the same cores, so this measures the cost of the distributed path, not a speed-up.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=["tensorflow", "jax"], help="one backend (default: both, one process each)")
    p.add_argument("--model", default="lenet5")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--samples", type=int, default=2048)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--engine", default="auto", help="kzoo engine for both runs: auto (what `kzoo train` uses), fit, tf")
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


def measure(args):
    from kzoo.backend import configure_devices, set_backend

    backend = set_backend(args.backend)
    configure_devices(backend, 2)
    import contextlib

    import keras

    import kzoo
    from kzoo.data import load_dataset
    from kzoo.engine import distributed
    from kzoo.engine.loops import choose_loop

    data = load_dataset("mnist_embedded")
    x, y = data.x_train[:args.samples].astype("float32") / 255.0, data.y_train[:args.samples]
    if x.ndim == 3:
        x = x[..., None]
    runs = {}
    for count, scope in ((1, contextlib.nullcontext()), (2, distributed.build_scope(
            distributed.DevicePlan(backend, 2, simulated=True)))):
        with scope:
            keras.utils.set_random_seed(0)
            model = kzoo.create_model(args.model, input_shape=x.shape[1:], num_classes=10)
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        loop = choose_loop(args.engine, backend, model, None, notify=lambda m: None)
        runs[count] = (model, loop, scope)

    def epoch(count, epoch_index):
        model, loop, scope = runs[count]
        start = time.perf_counter()
        with scope:
            loop.run(model, x, y, validation_data=None, epochs=epoch_index + 1, initial_epoch=epoch_index,
                     batch_size=args.batch_size, callbacks=[])
        return len(x) / (time.perf_counter() - start)

    for count in runs:
        epoch(count, 0)  # warm-up: tracing and compilation
    rates = {1: [], 2: []}
    for r in range(args.rounds):
        for count in ((1, 2) if r % 2 == 0 else (2, 1)):
            rates[count].append(epoch(count, r + 1))
    ratios = [b / a for a, b in zip(rates[1], rates[2])]
    return {"backend": backend, "model": args.model, "batch_size": args.batch_size,
            "engine": {c: runs[c][1].name for c in runs},
            "samples_per_s_1": statistics.median(rates[1]), "samples_per_s_2": statistics.median(rates[2]),
            "ratio": statistics.median(ratios)}


def main(argv=None):
    args = parse(argv)
    if args.backend is None:  # each backend in a process of its own: device counts are fixed at start-up
        for backend in ("tensorflow", "jax"):
            cmd = [sys.executable, __file__, "--backend", backend, *(argv if argv is not None else sys.argv[1:])]
            subprocess.run(cmd, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        return
    result = measure(args)
    print(f"{result['backend']} {result['model']} batch {result['batch_size']}: 1 device "
          f"{result['samples_per_s_1']:.0f} samples/s ({result['engine'][1]} engine), 2 simulated devices "
          f"{result['samples_per_s_2']:.0f} samples/s ({result['engine'][2]} engine)")
    if args.json:
        print(json.dumps(result))
    print(f"ratio={result['ratio']:.2f}")


if __name__ == "__main__":
    main()
