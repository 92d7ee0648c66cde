"""Data-parallel scaling on torch: samples/s of ``kzoo train --devices N`` and DDP's per-step communication time.

Each configuration is a separate ``kzoo train`` process (``WORKERSxTHREADS``: workers, torch threads per worker),
timed by the run itself (``samples_per_s`` of ``metrics.csv``, the median of the epochs after the first, which
holds start-up and graph compilation). The communication time is what DDP's all-reduce of one step costs: every
trainable parameter of the model, in DDP's default 25 MB buckets, all-reduced between the workers (gloo on CPU,
nccl on GPUs), measured on its own.

    python benchmarks/distributed.py --models lenet5,resnet18 --configs 1x1,1x2,2x1     # a 2-core CPU
    bash benchmarks/distributed_gpu.sh        # GPUs: 1, 2, 4, ... all of them, 256 samples per GPU per step
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PLANS = {  # model -> train options (small inputs: the embedded MNIST digits)
    "lenet5": {"limit": 4096, "batch_size": 64, "epochs": 4},
    "resnet18": {"limit": 256, "batch_size": 32, "epochs": 3, "options": ["small_stem=true"]},
}


def train_rate(model, workers, threads, plan, backend="torch"):
    """Median samples/s over the epochs after the first of one ``kzoo train`` run."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        command = [sys.executable, "-m", "kzoo", "train", model, "--devices", str(workers), "--quiet",
                   "--val-split", "0", "--output", run, "--seed", "0"]
        for key in ("limit", "batch_size", "epochs"):
            command += [f"--{key.replace('_', '-')}", str(plan[key])]
        for option in plan.get("options", []):
            command += ["-o", option]
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        with open(os.path.join(run, "metrics.csv"), newline="") as handle:
            rates = [float(row["samples_per_s"]) for row in csv.DictReader(handle)]
    return statistics.median(rates[1:] or rates), wall


def _allreduce_worker(numel, repeats):
    import datetime

    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=120))
    bucket = 25 * 2**20 // 4  # DDP's default bucket: 25 MB of float32
    sizes = [min(bucket, numel - start) for start in range(0, numel, bucket)]
    tensors = [torch.ones(n, device="cuda" if cuda else "cpu") for n in sizes]
    for tensor in tensors:  # warm-up: the first collective sets up the connections
        dist.all_reduce(tensor)
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        for tensor in tensors:
            dist.all_reduce(tensor)
    if cuda:
        torch.cuda.synchronize()
    elapsed = (time.perf_counter() - start) / repeats
    dist.destroy_process_group()
    return elapsed


def allreduce_ms(numel, workers, repeats=20):
    """Milliseconds for one step's gradient all-reduce of ``numel`` float32 values over ``workers`` processes."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=workers, run_id="allreduce",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, start_method="spawn")
    return 1000 * max(elastic_launch(config, _allreduce_worker)(numel, repeats).values())


def trainable_count(model, plan):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import kzoo

    options = dict(option.split("=") for option in plan.get("options", []))
    options = {k: v == "true" if v in ("true", "false") else v for k, v in options.items()}
    net = kzoo.create_model(model, input_shape=(28, 28, 1), num_classes=10, **options)
    return sum(int(w.numpy().size) for w in net.trainable_weights)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="lenet5,resnet18")
    parser.add_argument("--configs", default="1x1,1x2,2x1", help="WORKERSxTHREADS, comma-separated (0 threads: "
                                                                  "torch's default)")
    parser.add_argument("--limit", type=int, default=None, help="training samples (default: per model)")
    parser.add_argument("--per-device-batch", type=int, default=None,
                        help="global batch = this x workers (weak scaling; default: the model's fixed global batch)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the configurations, interleaved; the median "
                                                              "of the rounds is reported (a shared machine)")
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args()

    results = []
    for model in args.models.split(","):
        plan = dict(PLANS[model])
        if args.limit is not None:
            plan["limit"] = args.limit
        if args.epochs is not None:
            plan["epochs"] = args.epochs
        params = trainable_count(model, plan)
        configs = [tuple(int(part) for part in config.split("x")) for config in args.configs.split(",")]
        rates = {config: [] for config in configs}
        for _ in range(args.rounds):
            for workers, threads in configs:
                if args.per_device_batch:
                    plan["batch_size"] = args.per_device_batch * workers
                rate, wall = train_rate(model, workers, threads, plan)
                rates[workers, threads].append(rate)
                print(json.dumps({"model": model, "workers": workers, "threads": threads, "samples_per_s": rate,
                                  "wall_s": round(wall, 1)}), flush=True)
        base = statistics.median(rates[configs[0]])
        for workers, threads in configs:
            rate = statistics.median(rates[workers, threads])
            comm = allreduce_ms(params, workers) if workers > 1 else 0.0
            batch = args.per_device_batch * workers if args.per_device_batch else plan["batch_size"]
            results.append({"model": model, "workers": workers, "threads": threads, "samples_per_s": round(rate, 1),
                            "rounds": rates[workers, threads], "vs_first": round(rate / base, 2),
                            "scaling_efficiency": round(rate / (base * workers / configs[0][0]), 2),
                            "global_batch": batch, "step_ms": round(1000 * batch / rate, 1),
                            "allreduce_ms": round(comm, 2), "params": params})
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
    print("\n| model | workers x threads | global batch | samples/s | vs first | scaling efficiency | step (ms) | "
          "all-reduce per step (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['workers']} x {r['threads'] or 'default'} | {r['global_batch']} | "
              f"{r['samples_per_s']:,} | {r['vs_first']:.2f}x | {r['scaling_efficiency']:.2f} | {r['step_ms']} | "
              f"{r['allreduce_ms'] if r['workers'] > 1 else '-'} |")


if __name__ == "__main__":
    main()
