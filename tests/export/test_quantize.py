"""``kzoo export --format onnx --quantize int8``: a folder run's int8 file, calibrated on its training files and
verified on its test files, agrees with the float Keras model; mistakes exit 2 with nothing written."""

import json
import os

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """LeNet-5 trained 3 epochs on 600 embedded MNIST digits written as PNG class folders."""
    import kzoo
    from kzoo.data import load_dataset

    work = tmp_path_factory.mktemp("int8")
    ds = load_dataset("mnist_embedded")
    for i, (image, label) in enumerate(zip(ds.x_train[:600], ds.y_train[:600])):
        os.makedirs(work / "digits" / f"digit_{label}", exist_ok=True)
        Image.fromarray(image).save(work / "digits" / f"digit_{label}" / f"{i:04d}.png")
    run = kzoo.train("lenet5", data=str(work / "digits"), epochs=3, batch_size=32, quiet=True,
                     output=str(work / "run"))  # the default split: kzoo evaluate --data FOLDER draws the same
    return run["run_dir"]


def _files(run_dir, split):
    record = json.load(open(os.path.join(run_dir, "data_files.json")))
    rows = record[split]
    images = np.stack([np.asarray(Image.open(os.path.join(record["root"], p))) for p, _ in rows])
    return images.astype("float32")[..., None] / 255, np.array([y for _, y in rows])


def test_int8_file_agrees_with_the_float_model_on_the_runs_own_test_files(folder_run, cli_runner):
    import onnx
    import onnxruntime

    from kzoo.engine.checkpoints import load_model
    from kzoo_cli.main import cli

    result = cli_runner.invoke(cli, ["export", folder_run, "--format", "onnx", "--quantize", "int8", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    path = os.path.join(folder_run, "best.int8.onnx")
    assert report["path"] == path and report["ok"] and report["quantize"] == "int8"
    x_test, y_test = _files(folder_run, "test")
    assert report["samples"] == len(y_test) == 59  # the run's own test files (stratified 10%), not the embedded digits
    assert report["metadata"]["quantization"]["kind"] == "int8"
    assert report["verification_data"] == f"59 of the run's recorded test files under {_record_root(folder_run)}"
    assert report["metadata"]["quantization"]["calibration_data"].endswith(
        f"of the run's recorded train files under {_record_root(folder_run)}")
    assert report["metadata"]["quantization"]["quantized_ops"] >= 4  # LeNet-5's 2 convolutions and 3 dense layers

    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    weights = [t for t in onnx.load(path).graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(weights) >= 5  # every convolution and dense kernel is stored as int8

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    int8 = session.run(None, {session.get_inputs()[0].name: x_test})[0]
    keras_model = load_model(os.path.join(folder_run, "best.keras"), compile=False)
    import keras

    reference = np.asarray(keras.ops.convert_to_numpy(keras_model(x_test, training=False)))
    assert (int8.argmax(-1) == reference.argmax(-1)).mean() >= 0.98
    assert abs((int8.argmax(-1) == y_test).mean() - (reference.argmax(-1) == y_test).mean()) <= 0.034
    assert np.abs(int8 - reference).max() > 1e-4  # really quantized: not float32-close

    evaluated = cli_runner.invoke(cli, ["evaluate", path, "--data", _record_root(folder_run), "--json"])
    assert evaluated.exit_code == 0, evaluated.output  # kzoo evaluate runs the int8 file through onnxruntime
    accuracy = json.loads(evaluated.output[evaluated.output.index("{"):])["accuracy"]
    assert accuracy == pytest.approx((int8.argmax(-1) == y_test).mean(), abs=1e-6)


def _record_root(run_dir):
    return json.load(open(os.path.join(run_dir, "data_files.json")))["root"]


def test_calibration_reads_the_training_files_and_verification_the_test_files(folder_run):
    import yaml

    from kzoo.export.base import verification_inputs

    config = yaml.safe_load(open(os.path.join(folder_run, "config.yaml")))
    specs = [("inputs", (28, 28, 1), "float32")]
    for split in ("train", "test"):
        expected, _ = _files(folder_run, split)
        (got,), source = verification_inputs(specs, config, 1000, split=split, run_dir=folder_run)
        assert source == f"{len(expected)} of the run's recorded {split} files under {_record_root(folder_run)}"
        np.testing.assert_allclose(got, expected[:1000], atol=1e-6)


def test_quantize_mistakes_exit_2_and_write_nothing(folder_run, cli_runner):
    import kzoo
    from kzoo.export import ExportError
    from kzoo_cli.main import cli

    before = set(os.listdir(folder_run))
    result = cli_runner.invoke(cli, ["export", folder_run, "--format", "saved_model", "--quantize", "int8"])
    assert result.exit_code == 2
    assert "--quantize int8 applies to the onnx format only" in result.output
    result = cli_runner.invoke(cli, ["export", folder_run, "--format", "onnx", "--quantize", "int4"])
    assert result.exit_code == 2 and "int4" in result.output
    with pytest.raises(ExportError, match="--quantize takes int8"):
        kzoo.export(folder_run, "onnx", quantize="fp8")
    assert set(os.listdir(folder_run)) - before <= {"best.int8.onnx"}  # the first test's file at most


def test_int8_with_a_fixed_batch_calibrates_in_batches_of_that_size(folder_run, tmp_path):
    import onnxruntime

    import kzoo

    result = kzoo.export(folder_run, "onnx", quantize="int8", batch=7, output=str(tmp_path / "fixed.onnx"))
    assert result["ok"] and result["metadata"]["batch"] == 7 and result["top1_agreement"] >= 0.98
    session = onnxruntime.InferenceSession(result["path"], providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == 7
