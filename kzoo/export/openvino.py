"""OpenVINO IR (``FILE.xml`` + ``FILE.bin``), converted from tensorflow, compiled by the OpenVINO runtime.

Recurrent layers are unrolled over their static steps first (OpenVINO has no conversion for TensorFlow's
``TensorList`` ops). kzoo's metadata is in the IR's runtime info (``rt_info``) under ``kzoo`` (JSON)."""

import json
import os

from kzoo.export.base import METADATA_KEY, Format


# OpenVINO computes in bfloat16 by default on CPUs that have it (AVX512_BF16, AMX): differences of 1e-3. kzoo's
# files are float32 models and verify at float32 precision.
F32 = {"INFERENCE_PRECISION_HINT": "f32"}


class OpenVINOFormat(Format):
    name = "openvino"
    keras_format = "openvino"
    backend = "tensorflow"
    suffix = ".xml"
    requires = ("openvino",)
    runtime = "OpenVINO"
    runtime_requires = ("openvino",)
    static_rnn = ("SimpleRNN", "LSTM", "GRU")

    def artifacts(self, path):
        return [path, path[: -len(self.suffix)] + ".bin"]

    def load(self, path):
        import openvino

        compiled = openvino.Core().compile_model(path, "CPU", F32)
        return lambda arrays: compiled(list(arrays))[0]

    def write_metadata(self, path, metadata):
        import openvino

        model = openvino.Core().read_model(path)
        model.set_rt_info(json.dumps(metadata), [METADATA_KEY])
        # the runtime maps the .bin it read: save beside it, then rename over it (never write into the mapping)
        rewritten = path[: -len(self.suffix)] + ".meta.xml"
        openvino.save_model(model, rewritten, compress_to_fp16=False)
        del model
        for source, target in zip(self.artifacts(rewritten), self.artifacts(path)):
            os.replace(source, target)

    def read_metadata(self, path):
        import openvino

        info = openvino.Core().read_model(path).get_rt_info()
        return json.loads(info[METADATA_KEY].astype(str)) if METADATA_KEY in info else {}
