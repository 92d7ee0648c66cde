"""User mistakes: a clear message and exit status 2 (1 for a failed verification), nothing written."""

import importlib.util
import os

import pytest

import kzoo
from kzoo.export import ExportError, VerificationError


@pytest.fixture
def checkpoint(tmp_path):
    from export_helpers import build_small

    return build_small("mlp", {}, str(tmp_path))[0]


def _invoke(cli_runner, *args):
    from kzoo_cli.main import cli

    return cli_runner.invoke(cli, ["export", *args])


def test_unknown_format(cli_runner, checkpoint):
    result = _invoke(cli_runner, checkpoint, "--format", "tensorrt")
    assert result.exit_code == 2
    assert "Unknown export format 'tensorrt'. Choose one of: onnx, saved_model, litert, openvino, torch" in result.output


def test_existing_output_is_kept_without_overwrite(cli_runner, checkpoint, tmp_path):
    output = tmp_path / "model.onnx"
    output.write_bytes(b"keep me")
    result = _invoke(cli_runner, checkpoint, "--format", "onnx", "--output", str(output))
    assert result.exit_code == 2 and "already exists; pass --overwrite" in result.output
    assert output.read_bytes() == b"keep me"


def test_bad_options(cli_runner, checkpoint, tmp_path):
    result = _invoke(cli_runner, checkpoint, "--format", "saved_model", "--opset", "17")
    assert result.exit_code == 2 and "--opset applies to the onnx format only" in result.output
    result = _invoke(cli_runner, checkpoint, "--format", "onnx", "--batch", "0")
    assert result.exit_code == 2 and "expected 'dynamic' or a positive integer" in result.output
    result = _invoke(cli_runner, checkpoint, "--format", "litert", "--output", str(tmp_path / "m.onnx"))
    assert result.exit_code == 2 and "ends with .tflite" in result.output
    result = _invoke(cli_runner, str(tmp_path / "missing.keras"), "--format", "onnx")
    assert result.exit_code == 2 and "No such run folder or checkpoint" in result.output


def test_missing_dependency_names_the_extra(cli_runner, checkpoint, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    result = _invoke(cli_runner, checkpoint, "--format", "onnx")
    assert result.exit_code == 2
    assert "needs onnxruntime" in result.output and "pip install 'kzoo[export]'" in result.output
    assert not os.path.exists(checkpoint.replace(".keras", ".onnx"))


def test_failed_verification_exits_1_and_keeps_no_file(checkpoint, tmp_path):
    output = tmp_path / "strict.onnx"
    with pytest.raises(VerificationError) as info:
        kzoo.export(checkpoint, "onnx", output=str(output), tolerance=-1.0, limit=20)  # nothing can pass
    assert info.value.exit_code == 1 and "not kept" in str(info.value)
    assert os.listdir(tmp_path) == [os.path.basename(checkpoint)]


def test_export_error_is_a_user_error():
    assert issubclass(ExportError, kzoo.KzooError) and ExportError.exit_code == 2
