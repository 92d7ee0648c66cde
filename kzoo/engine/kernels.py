"""Faster kernels for Keras layers on the active backend, installed whenever kzoo builds or loads a model.

torch: torch's fused LSTM/GRU kernels on every device (:mod:`kzoo.engine.torch_kernels`); tensorflow: the
fused batch-norm kernel (:mod:`kzoo.engine.tf_kernels`); jax: none (XLA fuses on its
own). Each computes what the Keras layer computes (tests/engine/test_*_kernels.py) and leaves unusual cases
to Keras.
"""


def install():
    """Install the active backend's kernels (idempotent); returns whether anything was newly installed."""
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        from kzoo.engine.torch_kernels import install as install_backend
    elif backend == "tensorflow":
        from kzoo.engine.tf_kernels import install as install_backend
    else:
        return False
    return install_backend()
