"""ONNX (``.onnx``), exported from torch (Keras's TorchScript-based exporter keeps the batch axis dynamic),
run in onnxruntime. Batch norm is folded into the convolutions (:mod:`kzoo.export.onnx_graph`). kzoo's
metadata is in the model's ``metadata_props`` under the key ``kzoo`` (JSON)."""

import json

from kzoo.export.base import METADATA_KEY, Format
from kzoo.export.onnx_graph import optimize_file


class OnnxFormat(Format):
    name = "onnx"
    keras_format = "onnx"
    backend = "torch"
    suffix = ".onnx"
    requires = ("onnx", "onnxruntime", "onnxscript")
    runtime = "onnxruntime"
    runtime_requires = ("onnxruntime",)
    # torch runs LSTM and GRU as its fused kernels (kzoo.engine.torch_kernels), which export as ONNX LSTM/GRU;
    # Keras's own time loop of a SimpleRNN exports as a graph onnxruntime refuses (a ReduceMax of a scalar)
    static_rnn = ("SimpleRNN",)
    quantizes = ("int8",)  # onnxruntime's static QDQ quantizer (kzoo.export.quantize)

    def write(self, model, path, input_signature, opset=None):
        super().write(model, path, input_signature, opset)
        optimize_file(path)  # batch norm folded into the convolutions (kzoo.export.onnx_graph)

    def quantize(self, path, calibration, batch=None):
        """The file at ``path`` as an int8 model calibrated on ``calibration`` (:mod:`kzoo.export.quantize`)."""
        from kzoo.export.quantize import quantize_int8

        names = [i.name for i in open_session(path).get_inputs()]
        return quantize_int8(path, calibration, names, batch)

    def export_kwargs(self, model, input_signature, opset):
        return {"opset_version": opset} if opset else {}

    def load(self, path):
        session = open_session(path)
        names = [i.name for i in session.get_inputs()]
        return lambda arrays: session.run(None, dict(zip(names, arrays)))[0]

    def write_metadata(self, path, metadata):
        import onnx

        model = onnx.load(path)
        entry = next((p for p in model.metadata_props if p.key == METADATA_KEY), None) or model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
        model.producer_name = "kzoo"
        onnx.save(model, path)

    def read_metadata(self, path):
        meta = open_session(path).get_modelmeta().custom_metadata_map
        return json.loads(meta[METADATA_KEY]) if METADATA_KEY in meta else {}


def open_session(path):
    import onnxruntime

    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
