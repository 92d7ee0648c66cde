"""Same seed, same results: two runs of ``kzoo train lenet5 --seed 5`` agree to the last digit on a CPU."""

import csv
import json

import kzoo

TIMING = {"epoch_time", "samples_per_s"}


def _run(path):
    kzoo.train("lenet5", seed=5, epochs=1, limit=400, batch_size=50, quiet=True, output=str(path))
    with open(path / "metrics.csv", newline="") as handle:
        epochs = [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(handle)]
    report = json.loads((path / "metrics.json").read_text())
    return epochs, {k: report[k] for k in ("loss", "accuracy", "macro_f1", "confusion_matrix")}


def test_two_runs_with_one_seed_give_identical_losses_and_accuracies(tmp_path):
    first, second = _run(tmp_path / "first"), _run(tmp_path / "second")
    assert first == second
    assert float(first[0][0]["loss"]) > 0  # the rows hold numbers, not empty cells


def test_the_torch_engine_shuffles_with_the_runs_seed(tmp_path, backend, monkeypatch):
    """``--seed`` orders the torch engine's epochs as ``DistributedSampler(seed=SEED)`` does (seed + epoch).

    Before this test, the loop that trained was a fresh ``FastTorchLoop`` with the class's seed 0, so every run
    drew the seed-0 order whatever ``--seed`` said (found while comparing folder and in-memory ResNet runs)."""
    if backend != "torch":
        import pytest

        pytest.skip("the torch engine")
    import numpy as np
    import torch

    from kzoo.engine import torch_feed

    seen = {}
    original_init, original_epoch = torch_feed.DeviceBatches.__init__, torch_feed.DeviceBatches.epoch

    def init(self, x, y, *args, **kwargs):
        original_init(self, x, y, *args, **kwargs)
        if kwargs.get("shuffle", True):
            seen.setdefault("labels", np.asarray(y))

    def epoch(self, number=0):
        for xb, yb in original_epoch(self, number):
            if self.shuffle:
                seen.setdefault(number, []).append(yb.numpy().copy())
            yield xb, yb

    monkeypatch.setattr(torch_feed.DeviceBatches, "__init__", init)
    monkeypatch.setattr(torch_feed.DeviceBatches, "epoch", epoch)
    kzoo.train("lenet5", seed=7, epochs=2, limit=200, batch_size=50, val_split=0.0, quiet=True,
               engine="torch", output=str(tmp_path / "run"))
    labels = seen["labels"]
    for number in (0, 1):
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(7 + number)).numpy()
        np.testing.assert_array_equal(np.concatenate(seen[number]), labels[order])
