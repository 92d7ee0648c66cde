"""``kzoo evaluate FILE.onnx --data FOLDER``: a run's exported file is scored on exactly the run's test files (as
``kzoo evaluate RUN`` scores them), and a file that names no run says which split of the folder it drew."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory):
    """LeNet-5 trained 1 epoch with ``--seed 5`` on 400 embedded MNIST digits written as PNG class folders, and
    its ONNX export beside its checkpoint."""
    import kzoo
    from kzoo.data import load_dataset

    work = tmp_path_factory.mktemp("seeded")
    ds = load_dataset("mnist_embedded")
    for i, (image, label) in enumerate(zip(ds.x_train[:400], ds.y_train[:400])):
        os.makedirs(work / "digits" / f"digit_{label}", exist_ok=True)
        Image.fromarray(image).save(work / "digits" / f"digit_{label}" / f"{i:04d}.png")
    run = kzoo.train("lenet5", data=str(work / "digits"), epochs=1, batch_size=32, seed=5, quiet=True,
                     output=str(work / "run"))
    exported = kzoo.export(run["run_dir"], "onnx", limit=100)
    return {"work": work, "folder": str(work / "digits"), "run": run["run_dir"], "onnx": exported["path"]}


def _recorded(run_dir, split="test"):
    record = json.load(open(os.path.join(run_dir, "data_files.json")))
    return {os.path.join(record["root"], p) for p, _ in record[split]}


def _evaluate(cli_runner, *args):
    from kzoo_cli.main import cli

    result = cli_runner.invoke(cli, ["evaluate", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{"):])


def test_a_runs_file_is_scored_on_the_runs_own_test_files(seeded_run, cli_runner):
    from kzoo.data.image_folder import open_image_folder

    test_files = _recorded(seeded_run["run"])
    default_split = set(open_image_folder(seeded_run["folder"]).test.paths)  # seed 0: what evaluate drew before
    assert test_files != default_split and test_files & _recorded(seeded_run["run"], "train") == set()
    assert default_split & _recorded(seeded_run["run"], "train")  # the old split scored training images

    keras_report = _evaluate(cli_runner, seeded_run["run"])  # kzoo evaluate RUN: Keras on the recorded files
    onnx_report = _evaluate(cli_runner, seeded_run["onnx"], "--data", seeded_run["folder"])
    assert onnx_report["samples"] == keras_report["samples"] == len(test_files)
    assert onnx_report["accuracy"] == keras_report["accuracy"]
    assert onnx_report["confusion_matrix"] == keras_report["confusion_matrix"]
    assert onnx_report["test_files"] == {"source": "run", "run": seeded_run["run"], "files": len(test_files)}
    assert "recorded by the run" in onnx_report["split"]


def test_a_file_moved_out_of_its_run_still_finds_the_run(seeded_run, cli_runner, tmp_path):
    moved = str(tmp_path / "lenet.onnx")
    shutil.copy(seeded_run["onnx"], moved)
    report = _evaluate(cli_runner, moved, "--data", seeded_run["folder"])
    assert report["test_files"]["source"] == "run" and report["samples"] == len(_recorded(seeded_run["run"]))


def test_a_file_with_no_run_says_which_split_it_drew(seeded_run, cli_runner, tmp_path):
    import kzoo
    from kzoo.data.image_folder import open_image_folder
    from kzoo_cli.main import cli

    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(os.path.join(seeded_run["run"], "best.keras"), bare / "lenet.keras")
    exported = kzoo.export(str(bare / "lenet.keras"), "onnx", limit=50)
    assert "run" not in exported["metadata"] and "split" not in exported["metadata"]

    report = _evaluate(cli_runner, exported["path"], "--data", seeded_run["folder"])
    expected = open_image_folder(seeded_run["folder"], seed=0, val_split=0.1, test_split=0.1).test
    assert report["samples"] == len(expected)
    assert report["test_files"] == {"source": "split", "seed": 0, "val_split": 0.1, "test_split": 0.1,
                                    "files": len(expected), "layout": "classes"}
    assert "seed 0, val_split 0.1, test_split 0.1" in report["split"] and "names no run" in report["split"]

    text = cli_runner.invoke(cli, ["evaluate", exported["path"], "--data", seeded_run["folder"]])
    assert text.exit_code == 0, text.output
    assert f"scored on {len(expected)} test files of" in " ".join(text.output.split())


def test_a_file_whose_run_is_gone_uses_the_split_in_its_metadata(seeded_run, cli_runner, tmp_path):
    from kzoo.data.image_folder import open_image_folder
    from kzoo.export import FORMATS

    metadata = FORMATS["onnx"].read_metadata(seeded_run["onnx"])
    assert metadata["split"] == {"seed": 5, "val_split": 0.05, "test_split": 0.1}  # LeNet-5's recipe: val 5%
    orphan = str(tmp_path / "orphan.onnx")
    shutil.copy(seeded_run["onnx"], orphan)
    FORMATS["onnx"].write_metadata(orphan, dict(metadata, run=str(tmp_path / "deleted-run")))

    report = _evaluate(cli_runner, orphan, "--data", seeded_run["folder"])
    expected = set(open_image_folder(seeded_run["folder"], seed=5).test.paths)
    assert expected == _recorded(seeded_run["run"])  # the same seed and files give the same split
    assert report["test_files"]["seed"] == 5 and report["samples"] == len(expected)
    assert "as the file's metadata records it" in report["split"]
