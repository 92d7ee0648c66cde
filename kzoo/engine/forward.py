"""kzoo's inference forward pass (``kzoo evaluate``, ``kzoo predict``): a model's outputs on a NumPy batch.

``model(x, training=False)`` pays Keras's per-layer call overhead (dtype policies, name scopes, masking) on
every call, which at batch 1 is most of the time (``docs/benchmarks.md``). :func:`inference_forward` gives a
function of a NumPy batch, built once per model, that computes the same outputs the backend's fast way:

* torch: the training engine's graph compiler (:mod:`kzoo.engine.torch_graph`), the model as plain torch calls
  on its own weights, specialised for inference (:mod:`kzoo.engine.torch_inference`: batch norm folded into
  the convolutions, ReLU and Add in place), under ``torch.inference_mode()``, on CUDA replayed from a CUDA graph
  per batch shape (:class:`kzoo.engine.torch_cuda_graph.CapturedForward`); a model it cannot take (several
  inputs or outputs, masks, mixed precision, a subclassed model) runs as ``model(x)`` under ``torch.no_grad()``;
* tensorflow: ``model(x)`` inside one ``tf.function`` (a graph traced once for any batch size);
* jax: ``model.stateless_call`` inside ``jax.jit`` (compiled once per batch shape).

Tests (tests/engine/test_forward.py) compare the outputs with ``model.predict``.
"""

import weakref

import numpy as np

_FORWARDS = weakref.WeakKeyDictionary()


def inference_forward(model):
    """A function ``x -> float32 NumPy outputs`` of ``model`` in inference mode, built once per model.

    Its ``path`` attribute says which way it computes (``"torch graph"``, ``"keras call"``, ``"tf.function"``,
    ``"jax.jit"``) and ``reason`` why the torch graph was not used (``None`` when it was).
    """
    forward = _FORWARDS.get(model)
    if forward is None:
        forward = _FORWARDS[model] = _build(model)
    return forward


def _to_numpy(outputs):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(outputs), dtype="float32")


def _build(model):
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        return _torch_forward(model)
    if backend == "tensorflow":
        return _tf_forward(model)
    if backend == "jax":
        return _jax_forward(model)
    return _named(lambda x: _to_numpy(model(x, training=False)), "keras call")


def _named(fn, path, reason=None):
    fn.path, fn.reason = path, reason
    return fn


def why_not_graph(model):
    """``None`` when the torch graph compiler computes ``model``'s inference outputs, else the reason."""
    import keras
    from keras import layers as L

    if getattr(model, "_nodes_by_depth", None) is None:
        return "it is not a functional model"
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return "it has several inputs or outputs"
    layers = model._flatten_layers(include_self=False)
    if any(type(layer) is L.Masking or getattr(layer, "mask_zero", False) for layer in layers):
        return "it uses masks"
    policies = {layer.dtype_policy.name for layer in layers}
    if keras.config.dtype_policy().name != "float32" or policies - {"float32"}:
        return "it uses mixed precision"
    return None


def _torch_forward(model):
    import keras
    import torch

    reason = why_not_graph(model)
    if reason is not None:
        def keras_call(x):
            with torch.no_grad():
                return _to_numpy(model(x, training=False))

        return _named(keras_call, "keras call", reason)

    from kzoo.engine.torch_cuda_graph import CapturedForward
    from kzoo.engine.torch_graph import capturable_fallbacks, compile_graph, restride
    from kzoo.engine.torch_inference import InferencePlan

    graph = compile_graph(model)
    for kernel in graph.conv_kernels:
        restride(kernel)  # OIHW memory order: no weight copy in each convolution (as in training)
    plan = InferencePlan(graph)  # batch norm folded into convolutions, ReLU and Add in place
    dtype = getattr(torch, keras.backend.standardize_dtype(model.inputs[0].dtype))
    device = keras.ops.zeros(()).device  # where Keras keeps the model's variables
    forward = plan.forward
    if not any(not ok for _, ok in capturable_fallbacks(graph)):
        # on CUDA: one graph per batch shape, recaptured when a weight changed since (the folded kernels)
        variables = [v.value for v in model.variables]
        forward = CapturedForward(plan.forward, device, versions=lambda: tuple(t._version for t in variables))

    def torch_graph(x):
        with torch.inference_mode():
            output = forward(torch.as_tensor(x, dtype=dtype, device=device))
            return output.detach().to("cpu", torch.float32).numpy()

    return _named(torch_graph, "torch graph")


def _tf_forward(model):
    import tensorflow as tf

    if len(model.inputs) == 1:
        spec = tf.TensorSpec((None,) + tuple(model.inputs[0].shape[1:]), model.inputs[0].dtype)
        call = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        cast = lambda x: tf.cast(x, spec.dtype)  # noqa: E731
    else:
        call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        cast = lambda x: x  # noqa: E731
    return _named(lambda x: _to_numpy(call(cast(x))), "tf.function")


def _jax_forward(model):
    import jax

    @jax.jit
    def call(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=False)[0]

    def jitted(x):
        # the variables' current values at each call: a model trained or loaded after this was built is seen
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        return _to_numpy(call(trainable, non_trainable, x))

    return _named(jitted, "jax.jit")
