"""Fashion-MNIST test accuracy per model with kzoo's recipes, for docs/accuracy.md.

Each run goes through ``kzoo.train`` exactly as ``kzoo train`` does and gets a ``provenance.json``; its results
row (one JSON line) names the command, the commit, the machine and the run folder beside the test and
validation figures, read back from the run folder (``metrics.json``, ``state.json``), so a table built from the
rows (``benchmarks/tables.py``) says where each figure comes from. ``--from-runs`` makes the rows of run folders
that already exist.

    python benchmarks/accuracy.py --data-dir ../shared/datasets/fashion-mnist --models lenet5,resnet18 \
        --limit 10000 --epochs 3 --jsonl benchmarks/results/accuracy-DATE.jsonl
    python benchmarks/accuracy.py --from-runs runs/accuracy/mlp-fashion_mnist-1764850000
"""

import argparse
import json
import os
import time

from provenance import commit, run_row, train_command, write_provenance

# models and the options/overrides used for them on 2 CPU cores (recipes otherwise)
PLANS = {
    "mlp": {},
    "lenet5": {},
    "lenet5_classic": {"model": "lenet5", "options": {"activation": "sigmoid", "pool": "avg"}},
    "convnet2": {},
    "alexnet": {},
    "vgg11": {"options": {"width_multiplier": 0.25, "fc_units": 512}},
    "nin": {},
    "googlenet": {},
    "resnet18": {},
    "densenet_small": {},
    "lstm": {},
}


def train_row(key, args):
    """Train one plan as ``kzoo train`` would, write its ``provenance.json``, and return its results row."""
    import kzoo

    plan = dict(PLANS[key])
    model = plan.pop("model", key)
    options = plan.pop("options", {})
    output = os.path.join(args.output_root, f"{key}-{args.data}-{int(time.time())}")
    kwargs = {"model": model, "data": args.data, "data_dir": args.data_dir, "limit": args.limit or None,
              "epochs": args.epochs, "backend": args.backend, "output": output, "options": options, **plan}
    started, clock, at_commit = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.perf_counter(), commit()
    kzoo.train(quiet=True, **kwargs)
    write_provenance(output, train_command(kwargs), started, time.perf_counter() - clock, at_commit)
    return dict(run_row(output), key=key, train_samples=args.limit or "all")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(PLANS), help="comma-separated keys of PLANS")
    parser.add_argument("--data", default="fashion_mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=0, help="training (and test) samples; 0 = all")
    parser.add_argument("--epochs", type=int, default=None, help="override every recipe's epochs")
    parser.add_argument("--backend", default=None)
    parser.add_argument("--output-root", default="runs/accuracy")
    parser.add_argument("--from-runs", nargs="+", default=None, metavar="RUN",
                        help="train nothing: the rows of these run folders (their metrics.json and provenance.json)")
    parser.add_argument("--jsonl", default=None, help="append one row per run to this file")
    args = parser.parse_args()

    rows = ([run_row(run) for run in args.from_runs] if args.from_runs
            else (train_row(key, args) for key in args.models.split(",")))
    for row in rows:
        print(json.dumps(row), flush=True)
        if args.jsonl:
            with open(args.jsonl, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
