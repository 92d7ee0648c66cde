"""kzoo: the classic CNNs and RNNs, written once in Keras 3, on torch, TensorFlow or JAX.

The Python API mirrors the CLI::

    import kzoo
    kzoo.list_models("resnet*")             # kzoo list 'resnet*'
    kzoo.model_info("lenet5")               # kzoo info lenet5
    model = kzoo.create_model("resnet18", input_shape=(28, 28, 1), num_classes=10, small_stem=True)
    kzoo.summary("alexnet")                 # kzoo summary alexnet
    kzoo.train("lenet5", epochs=2)          # kzoo train lenet5 --epochs 2
    kzoo.explain("runs/lenet5-mnist_embedded-1", ["digit.png"])       # kzoo explain RUN digit.png
    kzoo.generate("runs/lstm-timemachine-1", "time traveller", 200)  # kzoo generate RUN --prefix ...
    kzoo.export("runs/lenet5-mnist_embedded-1", "onnx")               # kzoo export RUN --format onnx
    kzoo.list_runs("runs", status="finished")                         # kzoo runs --status finished

Importing ``kzoo`` does not import keras or any framework; heavy functions are loaded on first use.
"""

import importlib

from kzoo.backend import set_backend
from kzoo.errors import KzooError
from kzoo.factory import create_model
from kzoo.registry import list_models, model_info

__version__ = "0.1.0"

# name -> module that defines it; imported on first attribute access so `kzoo list` stays fast.
_LAZY = {
    "summary": "kzoo.summary",
    "build": "kzoo.summary",
    "train": "kzoo.engine.trainer",
    "evaluate": "kzoo.engine.evaluation",
    "predict": "kzoo.engine.evaluation",
    "explain": "kzoo.engine.gradcam",
    "generate": "kzoo.engine.generation",
    "load_model": "kzoo.engine.checkpoints",
    "list_datasets": "kzoo.data",
    "load_dataset": "kzoo.data",
    "list_runs": "kzoo.engine.run_index",
    "compare_runs": "kzoo.engine.run_index",
}

# subpackages that are also callable: ``kzoo.export(...)`` runs ``kzoo.export.export(...)``
_CALLABLE_SUBPACKAGES = ("export",)

__all__ = ["KzooError", "create_model", "list_models", "model_info", "set_backend", *_LAZY, *_CALLABLE_SUBPACKAGES]


def __getattr__(name):
    if name in _CALLABLE_SUBPACKAGES:
        return importlib.import_module(f"kzoo.{name}")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kzoo' has no attribute {name!r}")
