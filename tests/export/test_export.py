"""kzoo.export: each format checked in its own runtime against the Keras model on this backend."""

import json
import os

import numpy as np
import pytest

from kzoo.export import FORMATS, TOLERANCE
from export_helpers import OTHER_FORMAT_MODELS, OTHER_FORMATS, REPRESENTATIVE, keras_outputs


def _run_onnx(path, arrays):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: a for i, a in zip(session.get_inputs(), arrays)})[0]


def _run_saved_model(path, arrays):
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    return loaded.serve(arrays[0] if len(arrays) == 1 else arrays).numpy()


RUNTIMES = {"onnx": _run_onnx, "saved_model": _run_saved_model}


@pytest.mark.parametrize("fmt", ["onnx", "saved_model"])
@pytest.mark.parametrize("key", [*REPRESENTATIVE, "residual_cnn"])
def test_representative_models_match_keras_in_the_format_runtime(zoo_exports, key, fmt):
    _, model, results = zoo_exports[key]
    result = results[fmt]
    assert "error" not in result, result.get("message")
    assert result["ok"] and result["max_abs_diff"] <= TOLERANCE and result["samples"] > 0
    if result["top1_agreement"] is not None:
        assert result["top1_agreement"] == 1.0
    # independent of kzoo's own check: other inputs, this process's backend, the runtime called directly,
    # and a batch size the export never saw
    arrays, expected = keras_outputs(model)
    np.testing.assert_allclose(RUNTIMES[fmt](result["path"], arrays), expected, atol=TOLERANCE, rtol=TOLERANCE)


@pytest.mark.parametrize("key", OTHER_FORMAT_MODELS)
def test_litert_openvino_and_torch_export_match_keras(zoo_exports, key):
    from ai_edge_litert.interpreter import Interpreter
    import openvino
    import torch

    _, model, results = zoo_exports[key]
    arrays, expected = keras_outputs(model)
    for fmt in OTHER_FORMATS:
        assert "error" not in results[fmt], results[fmt].get("message")
        assert results[fmt]["ok"] and results[fmt]["top1_agreement"] == 1.0, results[fmt]
    interpreter = Interpreter(model_path=results["litert"]["path"])
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], arrays[0].shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], arrays[0])
    interpreter.invoke()
    outputs = {"litert": interpreter.get_tensor(interpreter.get_output_details()[0]["index"])}
    compiled = openvino.Core().compile_model(results["openvino"]["path"], "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    outputs["openvino"] = compiled([arrays[0]])[0]
    program = torch.export.load(results["torch"]["path"])
    outputs["torch"] = program.module()(torch.from_numpy(arrays[0])).detach().numpy()
    for fmt, output in outputs.items():
        np.testing.assert_allclose(output, expected, atol=TOLERANCE, rtol=TOLERANCE, err_msg=fmt)


def test_metadata_travels_inside_the_files(zoo_exports):
    import onnx

    _, _, results = zoo_exports["lenet5"]
    props = {p.key: p.value for p in onnx.load(results["onnx"]["path"]).metadata_props}
    onnx_meta = json.loads(props["kzoo"])
    assert onnx_meta["model"] == "lenet5" and onnx_meta["task"] == "classification"
    assert onnx_meta["inputs"] == [{"name": "input", "shape": [None, 28, 28, 1], "dtype": "float32"}]
    assert "[0, 1]" in onnx_meta["preprocessing"] and onnx_meta["kzoo_version"]
    with open(os.path.join(results["saved_model"]["path"], "assets.extra", "kzoo.json")) as handle:
        assert json.load(handle)["inputs"] == onnx_meta["inputs"]
    with open(results["litert"]["path"] + ".json") as handle:
        assert json.load(handle)["model"] == "lenet5"
    for fmt in ("openvino", "torch"):
        assert FORMATS[fmt].read_metadata(results[fmt]["path"])["inputs"] == onnx_meta["inputs"]


def test_dynamic_batch_by_default(zoo_exports):
    import onnxruntime

    _, _, results = zoo_exports["siamese"]
    session = onnxruntime.InferenceSession(results["onnx"]["path"], providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["left", "right"]
    assert all(not isinstance(i.shape[0], int) for i in session.get_inputs())


def test_a_model_no_format_can_hold_is_refused_and_nothing_is_left(zoo_exports, tmp_path):
    source, _, results = zoo_exports["variable_length"]
    for fmt in ("onnx", "saved_model"):
        assert results[fmt]["error"] == "unsupported"
        assert "unknown size" in results[fmt]["message"]
        assert not os.path.exists(results[fmt]["path"])
    folder = os.path.dirname(results["onnx"]["path"])
    assert not [name for name in os.listdir(folder) if name.startswith(".tmp-")]
