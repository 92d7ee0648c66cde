"""Post-training int8 quantization of an exported ONNX file (``kzoo export --format onnx --quantize int8``).

onnxruntime's own static quantizer (``onnxruntime.quantization.quantize_static``) rewrites the float32 graph
with ``QuantizeLinear``/``DequantizeLinear`` pairs (the QDQ format): weights as signed int8 per output channel,
activations as unsigned int8 with scales calibrated on real training samples of the run (MinMax over
:data:`CALIBRATION_SAMPLES` images; never the test samples the verification then scores). onnxruntime's CPU
provider fuses each pair around a ``Conv``/``MatMul``/``Gemm`` into its integer kernels (``QLinearConv``,
``MatMulIntegerToFloat``), which use the CPU's VNNI dot-product instructions where it has them.

The result is no longer within float32 rounding of the Keras model, so its verification asks for agreement of
the top-1 class (:data:`INT8_AGREEMENT` of the verification samples) instead of :data:`kzoo.export.base.TOLERANCE`;
the max difference is still reported. Recurrent ops (``LSTM``, ``GRU``) stay float32: the quantizer leaves the
operators it has no integer kernel for as they are.
"""

import os

CALIBRATION_SAMPLES = 256
CALIBRATION_BATCH = 32
INT8_AGREEMENT = 0.98  # top-1 agreement with the float32 Keras model that an int8 file must reach
KINDS = ("int8",)


def quantize_int8(path, calibration, input_names, batch=None):
    """Rewrite the float32 ONNX file at ``path`` as an int8 QDQ model calibrated on ``calibration``.

    Args:
        path: the exported (float32, batch-norm-folded) ``.onnx`` file; replaced in place.
        calibration: one array per model input, ``(samples, ...)``, from the run's training data.
        input_names: the graph's input names, in the order of ``calibration``.
        batch: the file's fixed batch size (calibration then runs batches of exactly that many, the last one
            padded), or ``None`` for a dynamic batch axis.

    Returns:
        ``{"kind", "weights", "activations", "calibration_samples", "quantized_ops"}`` for the metadata.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    import numpy as np

    step = batch or CALIBRATION_BATCH

    def chunk(array, start):
        part = array[start:start + step]
        if batch and len(part) < batch:  # a fixed batch axis takes exactly ``batch`` samples
            part = np.concatenate([part, np.repeat(part[-1:], batch - len(part), axis=0)])
        return part

    class Reader(CalibrationDataReader):
        def __init__(self):
            count = len(calibration[0])
            self.batches = iter([{name: chunk(array, start) for name, array in zip(input_names, calibration)}
                                 for start in range(0, count, step)])

        def get_next(self):
            return next(self.batches, None)

    prepared = f"{path}.pre.onnx"
    quantized = f"{path}.int8.onnx"
    try:
        quant_pre_process(path, prepared, skip_symbolic_shape=True)
        quantize_static(prepared, quantized, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        os.replace(quantized, path)
    finally:
        for leftover in (prepared, quantized):
            if os.path.exists(leftover):
                os.remove(leftover)
    return {"kind": "int8", "weights": "int8, per output channel", "activations": "uint8, MinMax-calibrated",
            "calibration_samples": len(calibration[0]), "quantized_ops": count_quantized(path)}


def count_quantized(path):
    """How many ops of the file run on int8 inputs (the consumers of a ``DequantizeLinear``)."""
    import onnx

    graph = onnx.load(path).graph
    dequantized = {out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    return sum(1 for node in graph.node if node.op_type not in ("QuantizeLinear", "DequantizeLinear")
               and any(name in dequantized for name in node.input))
