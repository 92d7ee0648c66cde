"""Fashion-MNIST test accuracy per model with kzoo's recipes, for docs/accuracy.md.

Each run goes through ``kzoo.train`` exactly as ``kzoo train`` does; the table row records the recipe, the
training subset, the wall time and the machine.

    python benchmarks/accuracy.py --data-dir ../shared/datasets/fashion-mnist --models lenet5,resnet18 \
        --limit 10000 --epochs 3 --json results.json
"""

import argparse
import json
import os
import platform
import time

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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(PLANS), help="comma-separated keys of PLANS")
    parser.add_argument("--data", default="fashion_mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=0, help="training (and test) samples; 0 = all")
    parser.add_argument("--epochs", type=int, default=None, help="override every recipe's epochs")
    parser.add_argument("--backend", default=None)
    parser.add_argument("--output-root", default="runs/accuracy")
    parser.add_argument("--json", dest="json_path", default=None, help="append results to this JSON file")
    args = parser.parse_args()

    import kzoo

    results = []
    for key in args.models.split(","):
        plan = dict(PLANS[key])
        model = plan.pop("model", key)
        options = plan.pop("options", {})
        start = time.perf_counter()
        output = os.path.join(args.output_root, f"{key}-{args.data}-{int(time.time())}")
        result = kzoo.train(model, data=args.data, data_dir=args.data_dir, limit=args.limit or None,
                            epochs=args.epochs, backend=args.backend, quiet=True, output=output,
                            options=options, **plan)
        elapsed = time.perf_counter() - start
        with open(os.path.join(output, "config.yaml"), encoding="utf-8") as handle:
            import yaml

            config = yaml.safe_load(handle)
        row = {"key": key, "model": model, "options": options, "accuracy": result["accuracy"],
               "epochs": config["epochs"], "optimizer": config["optimizer"], "lr": config["lr"],
               "batch_size": config["batch_size"], "schedule": config["schedule"],
               "train_samples": args.limit or "all", "seconds": round(elapsed, 1), "backend": config["backend"],
               "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               "date": time.strftime("%Y-%m-%d"), "run": output}
        print(json.dumps(row), flush=True)
        results.append(row)
        if args.json_path:
            existing = json.load(open(args.json_path)) if os.path.exists(args.json_path) else []
            with open(args.json_path, "w") as handle:
                json.dump(existing + [row], handle, indent=2)


if __name__ == "__main__":
    main()
