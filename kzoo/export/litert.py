"""LiteRT (``.tflite``), converted from tensorflow, run by the LiteRT interpreter (``ai-edge-litert``).

Recurrent layers are unrolled over their static steps first: the converter turns TensorFlow's while loop into
``TensorList`` ops that only the Flex delegate runs. A ``.tflite`` file has no free-form metadata field without
extra tooling, so kzoo's metadata is the sidecar ``FILE.tflite.json``."""

from kzoo.export.base import Format


class LiteRTFormat(Format):
    name = "litert"
    keras_format = "litert"
    backend = "tensorflow"
    suffix = ".tflite"
    requires = ("ai_edge_litert",)
    runtime = "the LiteRT interpreter"
    runtime_requires = ("ai_edge_litert",)
    static_rnn = ("SimpleRNN", "LSTM", "GRU")
    sidecar = True

    def load(self, path):
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=path)
        details = _in_model_order(interpreter.get_input_details(), self.read_metadata(path))
        output = interpreter.get_output_details()[0]["index"]

        def run(arrays):
            for detail, array in zip(details, arrays):
                if tuple(detail["shape"]) != array.shape:
                    interpreter.resize_tensor_input(detail["index"], array.shape)
            interpreter.allocate_tensors()
            for detail, array in zip(details, arrays):
                interpreter.set_tensor(detail["index"], array)
            interpreter.invoke()
            return interpreter.get_tensor(output)

        return run


def _in_model_order(details, metadata):
    """The interpreter's inputs (named like ``serving_default_left:0``) in the order of the model's inputs."""
    names = [i["name"] for i in metadata.get("inputs", [])]
    if len(details) < 2 or len(names) != len(details):
        return details
    by_name = {d["name"].split(":")[0].removeprefix("serving_default_"): d for d in details}
    return [by_name[n] for n in names] if all(n in by_name for n in names) else details
