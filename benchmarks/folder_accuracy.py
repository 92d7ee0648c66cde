"""Test accuracy of a model trained on an image folder against the same files in memory, over several seeds.

    python benchmarks/folder_accuracy.py [--model resnet18] [--images 3000] [--epochs 4] [--batch-size 64]
        [--seeds 0,1,2,3,4,5] [--schedule constant|cosine] [--same-order] [--json]

The folder is the first ``--images`` embedded MNIST training digits written as PNG class folders. For each seed,
``kzoo.train(MODEL, data=FOLDER, seed=S, val_split=0)`` draws its own stratified split (90% train, 10% test) and
trains; then the same train and test files, read into an ``.npz`` in the run's order, train in memory with the
same seed (``kzoo.train(MODEL, data="mnist", data_dir=NPZ, ...)``). Both report the test accuracy of the last
epoch on the seed's held-out 10% (nothing is tuned on it). The folder pipeline shuffles with NumPy, the torch
engine's in-memory feed with ``DistributedSampler`` (``torch.randperm`` seeded ``seed + epoch``);
``--same-order`` makes the folder draw torch's order too (torch backend), so the two runs see the same batches
and should end with the same weights (``tests/data/test_folder_runs.py`` asserts it bit for bit).
Figures and the discussion: ``docs/benchmarks.md`` ("Folder against memory accuracy").
"""

import argparse
import json
import os
import statistics
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--images", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seeds", default="0,1,2,3,4,5")
    p.add_argument("--schedule", default="constant", choices=["constant", "cosine", "step"])
    p.add_argument("--same-order", action="store_true", help="the folder draws the in-memory feed's torch order")
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


def torch_order(self):
    """``ImageBatches._draw_order`` as ``DistributedSampler(seed)`` orders an epoch (one worker)."""
    import torch

    if not self.shuffle:
        return np.arange(len(self.paths))
    return torch.randperm(len(self.paths), generator=torch.Generator().manual_seed(self.seed + self.epoch)).numpy()


def same_files_npz(run_dir, path):
    from PIL import Image

    files = json.load(open(os.path.join(run_dir, "data_files.json")))
    read = lambda rows: np.stack([np.asarray(Image.open(os.path.join(files["root"], p))) for p, _ in rows])  # noqa: E731
    labels = lambda rows: np.array([y for _, y in rows])  # noqa: E731
    np.savez(path, x_train=read(files["train"]), y_train=labels(files["train"]), x_test=read(files["test"]),
             y_test=labels(files["test"]))


def main(argv=None):
    args = parse(argv)
    from kzoo.backend import set_backend

    backend = set_backend(None)
    import kzoo
    from image_folder import write_mnist_pngs

    if args.same_order:
        from kzoo.data import pipeline

        pipeline.ImageBatches._draw_order = torch_order
    work = tempfile.mkdtemp(prefix="kzoo-folder-accuracy-")
    root = os.path.join(work, "mnist_png")
    write_mnist_pngs(root, args.images)
    common = {"epochs": args.epochs, "batch_size": args.batch_size, "val_split": 0.0, "quiet": True,
              "schedule": args.schedule}
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        folder = kzoo.train(args.model, data=root, seed=seed, output=os.path.join(work, f"folder{seed}"), **common)
        npz = os.path.join(work, f"same{seed}.npz")
        same_files_npz(folder["run_dir"], npz)
        memory = kzoo.train(args.model, data="mnist", data_dir=npz, seed=seed,
                            output=os.path.join(work, f"memory{seed}"), **common)
        rows.append({"seed": seed, "folder": folder["accuracy"], "memory": memory["accuracy"],
                     "test_samples": folder["samples"]})
        print(json.dumps(rows[-1]) if args.json else
              f"seed {seed}: folder {folder['accuracy']:.3f}  memory {memory['accuracy']:.3f}", flush=True)
    summary = {key: {"mean": round(statistics.mean(r[key] for r in rows), 4), "min": min(r[key] for r in rows),
                     "max": max(r[key] for r in rows)} for key in ("folder", "memory")}
    summary.update(model=args.model, backend=backend, schedule=args.schedule, same_order=args.same_order,
                   epochs=args.epochs, cpu_count=os.cpu_count(), load_average=os.getloadavg())
    print(json.dumps(summary) if args.json else summary)


if __name__ == "__main__":
    main()
