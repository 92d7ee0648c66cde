"""Faster kernels for the layers of the models kzoo's engine trains or loads, on the active backend.

torch: torch's fused LSTM/GRU kernels on every device (:mod:`kzoo.engine.torch_kernels`); tensorflow: the
fused batch-norm kernel (:mod:`kzoo.engine.tf_kernels`); jax: none (XLA fuses on its own). Each computes what
the Keras layer computes (tests/engine/test_*_kernels.py) and leaves unusual cases to Keras.

The kernels are given to layer instances, never to Keras's classes or functions: :func:`accelerate` is called by
the training loops (``kzoo.engine.loops``) on the model they train and by ``kzoo.load_model`` on the model it
returns. Any other Keras model in the same process, built by kzoo or not, computes with Keras's own code.
"""


def _backend_kernels():
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        from kzoo.engine import torch_kernels

        return torch_kernels if torch_kernels.usable() else None
    if backend == "tensorflow":
        from kzoo.engine import tf_kernels

        return tf_kernels
    return None


def accelerate(model):
    """Give every eligible layer of ``model`` (nested models included) the backend's kernel (idempotent).

    Returns the number of layers newly accelerated. The layers' configs, weights and saved files are unchanged.
    """
    kernels = _backend_kernels()
    if kernels is None:
        return 0
    return sum(kernels.accelerate_layer(layer) for layer in model._flatten_layers(include_self=False))
