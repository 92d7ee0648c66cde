"""TensorFlow SavedModel (a folder), exported from tensorflow, served by ``tf.saved_model.load(...).serve``.

kzoo's metadata is ``assets.extra/kzoo.json``, the folder SavedModel keeps for files that travel with a model
without being part of its graph."""

import json
import os

from kzoo.export.base import Format

METADATA_FILE = os.path.join("assets.extra", "kzoo.json")


class SavedModelFormat(Format):
    name = "saved_model"
    keras_format = "tf_saved_model"
    backend = "tensorflow"
    suffix = ""
    runtime = "TensorFlow"
    runtime_requires = ("tensorflow",)

    def default_path(self, stem):
        return f"{stem}_saved_model"

    def check_path(self, path):
        pass

    def load(self, path):
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # keep the object: its functions need its variables alive

        def run(arrays):
            return loaded.serve(arrays[0] if len(arrays) == 1 else list(arrays)).numpy()

        return run

    def write_metadata(self, path, metadata):
        os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
        with open(os.path.join(path, METADATA_FILE), "w", encoding="utf-8") as handle:
            json.dump(metadata, handle, indent=2)

    def read_metadata(self, path):
        try:
            with open(os.path.join(path, METADATA_FILE), encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError:
            return {}
