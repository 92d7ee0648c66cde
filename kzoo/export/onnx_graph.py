"""The exported ONNX graph made lean for inference: onnxruntime's basic rewrites, then batch norm folded.

Keras computes an inference-mode ``BatchNormalization`` as elementwise ops (``(x - mean) * scale + beta``), which
the exporter writes as ``Sub``, ``Mul`` and ``Add`` nodes after the ``Conv``; onnxruntime fuses a
``BatchNormalization`` node into the convolution but not these, so every batch-normalised convolution pays three
extra passes over its output at each call. :func:`optimize_file` first saves the graph as onnxruntime's *basic*
optimizations leave it (constants folded, the layout transposes of Keras's channels-last tensors cancelled:
standard ONNX operators only), then folds every chain of per-output-channel constant ``Add``/``Sub``/``Mul``/
``Div`` that follows a ``Conv`` into that convolution's weights and bias. The file verifies against Keras like
any other (``kzoo.export.base.TOLERANCE``).
"""

import os
from collections import defaultdict

import numpy as np

_AFFINE = ("Add", "Sub", "Mul", "Div")


def optimize_file(path):
    """Rewrite the ONNX file at ``path`` in place (see the module docstring); returns the number of folded ops."""
    import onnx
    import onnxruntime

    basic = f"{path}.basic.onnx"
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = basic
    try:
        onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        model = onnx.load(basic)
    finally:
        if os.path.exists(basic):
            os.remove(basic)
    folded = fold_affine_into_conv(model.graph)
    onnx.save(model, path)
    return folded


def _per_channel(constant, channels, rank):
    """``constant`` as a vector of ``channels`` values when it broadcasts along the channel axis only, else None."""
    if constant.dtype != np.float32 or constant.ndim > rank:
        return None
    shape = (1,) * (rank - constant.ndim) + constant.shape
    if shape[0] != 1 or any(d != 1 for d in shape[2:]) or shape[1] not in (1, channels):
        return None
    return np.broadcast_to(constant.reshape(-1), (channels,)).astype(np.float64)


def fold_affine_into_conv(graph):
    """Fold per-channel constant affine ops after each ``Conv`` of ``graph`` into it; returns how many were folded."""
    from onnx import numpy_helper

    constants = {t.name: t for t in graph.initializer}
    consumers = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    graph_outputs = {o.name for o in graph.output}
    dropped, new_constants, folded = set(), [], 0
    for conv in [n for n in graph.node if n.op_type == "Conv"]:
        bias_name = conv.input[2] if len(conv.input) > 2 and conv.input[2] else None
        if conv.input[1] not in constants or (bias_name and bias_name not in constants):
            continue
        weight = numpy_helper.to_array(constants[conv.input[1]])
        if weight.dtype != np.float32:
            continue
        channels, rank = weight.shape[0], weight.ndim
        scale = np.ones(channels)
        shift = numpy_helper.to_array(constants[bias_name]).astype(np.float64) if bias_name else np.zeros(channels)
        value, chain = conv.output[0], []
        while value not in graph_outputs and len(consumers[value]) == 1:
            node = consumers[value][0]
            if node.op_type not in _AFFINE or len(node.input) != 2:
                break
            other = node.input[1] if node.input[0] == value else node.input[0]
            if other not in constants or (node.op_type in ("Sub", "Div") and node.input[0] != value):
                break
            c = _per_channel(numpy_helper.to_array(constants[other]), channels, rank)
            if c is None:
                break
            if node.op_type == "Add":
                shift = shift + c
            elif node.op_type == "Sub":
                shift = shift - c
            elif node.op_type == "Mul":
                scale, shift = scale * c, shift * c
            else:
                scale, shift = scale / c, shift / c
            chain.append(node)
            value = node.output[0]
        if not chain:
            continue
        stem = conv.name or conv.output[0]
        new_weight = (weight * scale.reshape((-1,) + (1,) * (rank - 1))).astype(np.float32)
        new_constants += [numpy_helper.from_array(new_weight, f"{stem}_folded_weight"),
                          numpy_helper.from_array(shift.astype(np.float32), f"{stem}_folded_bias")]
        del conv.input[1:]
        conv.input.extend([f"{stem}_folded_weight", f"{stem}_folded_bias"])
        dropped.update([conv.output[0]] + [n.output[0] for n in chain[:-1]])
        conv.output[0] = value
        for node in chain:
            graph.node.remove(node)
        folded += len(chain)
    graph.initializer.extend(new_constants)
    used = {name for node in graph.node for name in node.input} | graph_outputs
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)
    for info in [v for v in graph.value_info if v.name in dropped]:
        graph.value_info.remove(info)
    return folded
