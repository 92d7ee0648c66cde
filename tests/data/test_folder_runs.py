"""Training, evaluating and predicting on a folder of real images (MNIST digits written as PNG files).

The folder run is compared with the in-memory run of the same images (an ``.npz`` of the same files in the
same order): the pipeline must not cost accuracy.
"""

import csv
import json
import os

import numpy as np
import pytest
import yaml
from PIL import Image

from kzoo_cli.main import cli


def _read(paths):
    return np.stack([np.asarray(Image.open(p)) for p in paths])


@pytest.mark.slow
def test_folder_run_matches_the_in_memory_run_of_the_same_images(tmp_path, write_digits):
    import kzoo

    root = tmp_path / "digits"
    write_digits(root, 2500)
    common = {"epochs": 2, "batch_size": 32, "val_split": 0.0, "limit": 1500, "quiet": True, "seed": 0}
    folder_run = kzoo.train("lenet5", data=str(root), output=str(tmp_path / "folder_run"), **common)

    run_dir = folder_run["run_dir"]
    files = json.load(open(os.path.join(run_dir, "data_files.json")))
    train = [os.path.join(files["root"], p) for p, _ in files["train"]][:1500]
    test = [os.path.join(files["root"], p) for p, _ in files["test"]]
    np.savez(tmp_path / "same.npz", x_train=_read(train), y_train=np.array([y for _, y in files["train"]][:1500]),
             x_test=_read(test), y_test=np.array([y for _, y in files["test"]]))
    memory_run = kzoo.train("lenet5", data="mnist", data_dir=str(tmp_path / "same.npz"),
                            output=str(tmp_path / "memory_run"), **common)
    assert folder_run["samples"] == memory_run["samples"] == len(test) == 250
    assert folder_run["accuracy"] > 0.8 and memory_run["accuracy"] > 0.8
    assert abs(folder_run["accuracy"] - memory_run["accuracy"]) < 0.06, (folder_run["accuracy"],
                                                                         memory_run["accuracy"])
    assert folder_run["class_names"] == [f"digit_{i}" for i in range(10)]


@pytest.mark.slow
def test_torch_engine_trains_resnet18_on_a_folder_as_on_the_same_images_in_memory(tmp_path, write_digits, backend,
                                                                                 monkeypatch):
    """ResNet-18 (batch norm, residual adds) trained by the torch engine on streamed folder batches ends with the
    weights of the same run on the same files in memory, when both draw the same order.

    The in-memory feed shuffles with ``DistributedSampler(seed=SEED)`` (``torch.randperm`` seeded ``seed +
    epoch``), the folder pipeline with NumPy; the folder's order is set to torch's here, so any difference left
    is the streamed path's own (decoding, the hand-over threads, the device copy, the loop). SGD at this learning
    rate amplifies a last-bit difference in one pixel into weights 0.04 apart within two epochs (seen when the
    pipeline multiplied by 1/255 where the arrays divide by 255), so the weights must agree exactly."""
    if backend != "torch":
        pytest.skip("the torch engine")
    import torch

    import kzoo
    from kzoo.data import pipeline

    def torch_order(self):
        if not self.shuffle:
            return np.arange(len(self.paths))
        return torch.randperm(len(self.paths), generator=torch.Generator().manual_seed(self.seed + self.epoch)).numpy()

    root = tmp_path / "digits"
    write_digits(root, 600)
    common = {"epochs": 2, "batch_size": 64, "val_split": 0.0, "quiet": True, "seed": 3, "engine": "torch"}
    with monkeypatch.context() as patch:
        patch.setattr(pipeline.ImageBatches, "_draw_order", torch_order)
        folder_run = kzoo.train("resnet18", data=str(root), output=str(tmp_path / "folder_run"), **common)
    files = json.load(open(os.path.join(folder_run["run_dir"], "data_files.json")))
    train = [os.path.join(files["root"], p) for p, _ in files["train"]]
    test = [os.path.join(files["root"], p) for p, _ in files["test"]]
    np.savez(tmp_path / "same.npz", x_train=_read(train), y_train=np.array([y for _, y in files["train"]]),
             x_test=_read(test), y_test=np.array([y for _, y in files["test"]]))
    memory_run = kzoo.train("resnet18", data="mnist", data_dir=str(tmp_path / "same.npz"),
                            output=str(tmp_path / "memory_run"), **common)

    from kzoo.engine.checkpoints import load_model

    folder_model = load_model(os.path.join(folder_run["run_dir"], "last.keras"))
    memory_model = load_model(os.path.join(memory_run["run_dir"], "last.keras"))
    assert len(folder_model.weights) == len(memory_model.weights) > 60
    for a, b in zip(folder_model.weights, memory_model.weights):  # bit for bit: the pixels are scaled alike too
        np.testing.assert_array_equal(np.asarray(a.numpy()), np.asarray(b.numpy()), err_msg=a.path)
    assert folder_run["samples"] == memory_run["samples"] == len(test)
    assert abs(folder_run["accuracy"] - memory_run["accuracy"]) <= 1 / len(test)


@pytest.mark.parametrize("engine", [pytest.param("fit", marks=pytest.mark.slow), "auto"])
def test_every_engine_takes_streamed_batches(tmp_path, write_digits, cli_runner, engine):
    import kzoo

    root = tmp_path / "digits"
    write_digits(root, 200)
    bad = sorted((root / "digit_5").iterdir())[0]
    bad.write_bytes(bad.read_bytes()[:120])  # truncated: the header reads, decoding fails in a worker
    with pytest.warns(UserWarning, match=bad.name):
        result = kzoo.train("lenet5", data=str(root), engine=engine, epochs=2, batch_size=16, augment=True,
                            cache="ram", quiet=True, output=str(tmp_path / "run"))
    history = list(csv.DictReader(open(os.path.join(result["run_dir"], "metrics.csv"))))
    assert len(history) == 2 and all(np.isfinite(float(r["loss"])) for r in history)
    assert "val_accuracy" in history[0]
    config = yaml.safe_load(open(os.path.join(result["run_dir"], "config.yaml")))
    assert config["data_folder"]["skipped_images"] == 1 and config["cache"] == "ram"
    assert config["class_names"] == [f"digit_{i}" for i in range(10)] == result["class_names"]
    files = json.load(open(os.path.join(result["run_dir"], "data_files.json")))
    test = [os.path.join(files["root"], p) for p, _ in files["test"] if not p.endswith(bad.name)]

    evaluated = cli_runner.invoke(cli, ["evaluate", result["run_dir"], "--json"], catch_exceptions=False)
    report = json.loads(evaluated.output)
    assert report["samples"] == result["samples"] == len(test)
    assert report["accuracy"] == pytest.approx(result["accuracy"], abs=1e-6)
    assert report["class_names"] == result["class_names"]

    out = tmp_path / "preds.csv"
    predicted = cli_runner.invoke(cli, ["predict", result["run_dir"], *test[:5], str(root / "digit_3"),
                                        "--top-k", "2", "--output", str(out)], catch_exceptions=False)
    assert predicted.exit_code == 0
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 5 + len(os.listdir(root / "digit_3"))
    assert set(rows[0]) == {"path", "class_1", "probability_1", "class_2", "probability_2"}
    assert rows[0]["class_1"].startswith("digit_")
    assert float(rows[0]["probability_1"]) >= float(rows[0]["probability_2"])
    probs = np.array([[float(row["probability_1"]), float(row["probability_2"])] for row in rows])
    assert np.all((probs > 0) & (probs <= 1)) and np.all(probs.sum(1) <= 1 + 1e-5)


@pytest.mark.parametrize("setup, message", [
    ("missing", "No such folder"),
    ("empty", "no class subfolders"),
    ("single", "single class"),
    ("empty_class", "holds no images"),
])
def test_cli_folder_mistakes_exit_2(tmp_path, write_digits, cli_runner, setup, message):
    root = tmp_path / "data"
    if setup == "empty":
        root.mkdir()
    elif setup == "single":
        write_digits(root, 40, classes=[2])
    elif setup == "empty_class":
        write_digits(root, 40)
        (root / "digit_z").mkdir()
    result = cli_runner.invoke(cli, ["train", "lenet5", "--data", str(root), "--output", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert "Error:" in result.output and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_cli_strict_data_and_bad_options_exit_2(tmp_path, write_digits, cli_runner):
    root = tmp_path / "data"
    write_digits(root, 60)
    (root / "digit_1" / "corrupt.png").write_bytes(b"garbage")
    strict = cli_runner.invoke(cli, ["train", "lenet5", "--data", str(root), "--strict-data"])
    assert strict.exit_code == 2 and "corrupt.png" in strict.output
    size = cli_runner.invoke(cli, ["train", "lenet5", "--data", str(root), "--image-size", "3x4x5"])
    assert size.exit_code == 2 and "image_size" in size.output
    split = cli_runner.invoke(cli, ["train", "lenet5", "--data", str(root), "--val-split", "0.5",
                                    "--test-split", "0.6"])
    assert split.exit_code == 2 and "val_split + test_split" in split.output


@pytest.mark.parametrize("budget_mb, kind, says", [(None, "ram", "cached in RAM"),
                                                    ("0.01", "none", "decoded again every epoch")])
def test_cli_default_cache_is_ram_when_the_folder_fits_the_budget(tmp_path, write_digits, cli_runner, monkeypatch,
                                                                  budget_mb, kind, says):
    root = tmp_path / "digits"
    write_digits(root, 600)  # 600 images of 28x28: 0.45 MB decoded
    if budget_mb:
        monkeypatch.setenv("KZOO_RAM_CACHE_MB", budget_mb)
    run = tmp_path / "run"
    result = cli_runner.invoke(cli, ["train", "lenet5", "--data", str(root), "--epochs", "1", "--output", str(run)],
                               catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert says in result.output and "0.4 MB decoded" in result.output
    config = yaml.safe_load(open(run / "config.yaml"))
    assert config["cache"] == "auto" and config["data_folder"]["cache"] == kind
    assert config["data_folder"]["decoded_mb"] == round(600 * 28 * 28 / 2**20, 1)
