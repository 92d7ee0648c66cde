"""Folding per-channel affine ops into convolutions (``kzoo.export.onnx_graph``): onnxruntime gives the same
outputs on the folded graph as on the original, and only foldable ops go."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from kzoo.export.onnx_graph import fold_affine_into_conv, optimize_file  # noqa: E402


def conv_graph(tail, bias=True):
    """``x -> Conv(4 -> 6 channels) -> tail ops -> y``; ``tail``: (op, constant, constant first?)."""
    rng = np.random.default_rng(0)
    constants = [numpy_helper.from_array(rng.normal(size=(6, 4, 3, 3)).astype("float32"), "w")]
    conv_inputs = ["x", "w"]
    if bias:
        constants.append(numpy_helper.from_array(rng.normal(size=(6,)).astype("float32"), "b"))
        conv_inputs.append("b")
    nodes = [helper.make_node("Conv", conv_inputs, ["h0"], pads=[1, 1, 1, 1], name="conv")]
    for i, (op, constant, first) in enumerate(tail):
        constants.append(numpy_helper.from_array(constant.astype("float32"), f"c{i}"))
        inputs = [f"c{i}", f"h{i}"] if first else [f"h{i}", f"c{i}"]
        nodes.append(helper.make_node(op, inputs, [f"h{i + 1}"]))
    nodes.append(helper.make_node("Relu", [f"h{len(tail)}"], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], constants)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model, x):
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def channel(rng, low=0.5, high=2.0):
    return rng.uniform(low, high, (6, 1, 1))


@pytest.mark.parametrize("bias", [True, False])
def test_batch_norm_chain_folds_into_the_conv(bias):
    rng = np.random.default_rng(1)
    # Keras's inference batch norm: (x - mean) * (gamma / sqrt(var + eps)) + beta; then a scalar Div
    model = conv_graph([("Sub", channel(rng), False), ("Mul", channel(rng), False), ("Add", channel(rng), True),
                        ("Div", np.array(2.0), False)], bias=bias)
    x = rng.normal(size=(3, 4, 5, 5)).astype("float32")
    expected = run(model, x)
    assert fold_affine_into_conv(model.graph) == 4
    assert [n.op_type for n in model.graph.node] == ["Conv", "Relu"]
    assert {t.name for t in model.graph.initializer} == {"conv_folded_weight", "conv_folded_bias"}
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-5, atol=1e-5)


def test_ops_that_are_not_per_channel_constants_stay():
    rng = np.random.default_rng(2)
    # a constant minus the conv (not an affine map of the conv's bias), then a per-pixel constant
    model = conv_graph([("Mul", channel(rng), False), ("Sub", channel(rng), True),
                        ("Add", rng.normal(size=(1, 6, 5, 5)), False)])
    x = rng.normal(size=(2, 4, 5, 5)).astype("float32")
    expected = run(model, x)
    assert fold_affine_into_conv(model.graph) == 1  # the Mul only
    assert [n.op_type for n in model.graph.node] == ["Conv", "Sub", "Add", "Relu"]
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-5, atol=1e-5)


def test_optimize_file_keeps_the_outputs(tmp_path):
    rng = np.random.default_rng(3)
    model = conv_graph([("Sub", channel(rng), False), ("Mul", channel(rng), False), ("Add", channel(rng), False)])
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    x = rng.normal(size=(2, 4, 5, 5)).astype("float32")
    expected = run(model, x)
    assert optimize_file(path) == 3
    folded = onnx.load(path)
    assert "Sub" not in [n.op_type for n in folded.graph.node]
    np.testing.assert_allclose(run(folded, x), expected, rtol=1e-5, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary file left
