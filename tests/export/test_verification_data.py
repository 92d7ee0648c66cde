"""Which data an export is verified (and an int8 file calibrated) on: the run's own, or the digits shipped with
kzoo said in so many words; a folder run whose folder is gone stops with an error instead."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image


def _digits():
    from kzoo.data import load_dataset

    return load_dataset("mnist_embedded")


@pytest.fixture(scope="module")
def array_run(tmp_path_factory):
    """LeNet-5 trained 1 epoch on ``mnist`` read from a ``.npz`` (inverted embedded digits: not the shipped ones)."""
    import kzoo

    work = tmp_path_factory.mktemp("arrays")
    ds = _digits()
    npz = work / "mnist.npz"
    np.savez(npz, x_train=255 - ds.x_train[:600], y_train=ds.y_train[:600], x_test=255 - ds.x_test[:200],
             y_test=ds.y_test[:200])
    run = kzoo.train("lenet5", data="mnist", data_dir=str(npz), epochs=1, quiet=True, output=str(work / "run"))
    return {"run": run["run_dir"], "npz": str(npz), "work": work}


def test_a_run_on_arrays_is_verified_on_its_own_test_images(array_run):
    import yaml

    from kzoo.export.base import verification_inputs

    config = yaml.safe_load(open(os.path.join(array_run["run"], "config.yaml")))
    specs = [("inputs", (28, 28, 1), "float32")]
    (images,), source = verification_inputs(specs, config, 100, run_dir=array_run["run"])
    np.testing.assert_array_equal(images[..., 0], (255 - _digits().x_test[:100]).astype("float32") / 255)
    assert source == "mnist test images (the run's data)"


def test_a_run_whose_arrays_are_gone_says_it_used_the_shipped_digits(array_run, cli_runner):
    import yaml

    from kzoo.export import FORMATS
    from kzoo.export.base import verification_inputs
    from kzoo_cli.main import cli

    moved = array_run["npz"] + ".away"
    os.replace(array_run["npz"], moved)
    try:
        config = yaml.safe_load(open(os.path.join(array_run["run"], "config.yaml")))
        (images,), source = verification_inputs([("inputs", (28, 28, 1), "float32")], config, 100,
                                                run_dir=array_run["run"])
        np.testing.assert_array_equal(images[..., 0], _digits().x_test[:100].astype("float32") / 255)
        assert source.startswith("mnist_embedded test images instead of the run's data 'mnist', which could not "
                                 "be loaded here (")

        result = cli_runner.invoke(cli, ["export", array_run["run"], "--format", "onnx", "--limit", "100"])
        assert result.exit_code == 0, result.output
        assert (f"verified on: mnist_embedded test images instead of the run's data 'mnist', which could not be "
                f"loaded here (data_dir {array_run['npz']} does not exist)") in " ".join(result.output.split())
        metadata = FORMATS["onnx"].read_metadata(os.path.join(array_run["run"], "best.onnx"))
        assert metadata["verification_data"].startswith("mnist_embedded test images instead of the run's data")

        # calibrated on digits unlike the run's (inverted) ones, the int8 file may well fail its agreement check;
        # either way the output says what it was calibrated on
        result = cli_runner.invoke(cli, ["export", array_run["run"], "--format", "onnx", "--quantize", "int8",
                                         "--limit", "100"])
        assert result.exit_code in (0, 1), result.output
        text = " ".join(result.output.split())
        assert "calibrated on: mnist_embedded train images instead of the run's data 'mnist'" in text
        if result.exit_code == 0:
            metadata = FORMATS["onnx"].read_metadata(os.path.join(array_run["run"], "best.int8.onnx"))
            assert metadata["quantization"]["calibration_data"].startswith("mnist_embedded train images instead")
    finally:
        os.replace(moved, array_run["npz"])


def test_a_folder_run_whose_folder_was_moved_away_stops_with_an_error(tmp_path, cli_runner):
    import kzoo
    from kzoo.export.base import verification_inputs
    from kzoo_cli.main import cli

    ds = _digits()
    for i, (image, label) in enumerate(zip(ds.x_train[:200], ds.y_train[:200])):
        os.makedirs(tmp_path / "digits" / f"digit_{label}", exist_ok=True)
        Image.fromarray(image).save(tmp_path / "digits" / f"digit_{label}" / f"{i:04d}.png")
    run = kzoo.train("lenet5", data=str(tmp_path / "digits"), epochs=1, quiet=True, output=str(tmp_path / "run"))
    shutil.move(str(tmp_path / "digits"), str(tmp_path / "elsewhere"))
    before = sorted(os.listdir(run["run_dir"]))

    result = cli_runner.invoke(cli, ["export", run["run_dir"], "--format", "onnx"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: The run trained on the image folder ")
    assert "which is not there any more (moved or deleted)" in result.output
    assert "Traceback" not in result.output and sorted(os.listdir(run["run_dir"])) == before  # nothing written

    config = {"data": str(tmp_path / "digits"), "data_folder": {"root": str(tmp_path / "digits")}}
    with pytest.raises(kzoo.export.ExportError, match="not there any more"):
        verification_inputs([("inputs", (28, 28, 1), "float32")], config, 10, run_dir=run["run_dir"])
    record = json.load(open(os.path.join(run["run_dir"], "data_files.json")))
    assert record["root"] == str(tmp_path / "digits")
