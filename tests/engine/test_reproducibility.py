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
