"""TensorFlow's fused batch-norm kernel for Keras ``BatchNormalization`` layers on the tensorflow backend.

Keras 3 (3.15) normalises with separate ops on every backend (``ops.moments``, then ``ops.batch_normalization``:
about ten kernels forward and their gradients backward). TensorFlow has one fused kernel for the common case
(``FusedBatchNormV3``, the one tf.keras 2 used): on this CPU, forward + backward of a 64x28x28x64 batch takes
7.8 ms fused vs 17.4 ms unfused (docs/benchmarks.md). :func:`accelerate_layer` gives one layer instance a
``call`` of its own that routes every eligible call (a 4-D channels-last float32 input, no mask, no renorm; on a
GPU, epsilon >= 1e-5 as cuDNN requires) to it, with the same variables and the same results
(tests/engine/test_tf_kernels.py): the fused kernel returns the Bessel-corrected batch variance, which is
scaled back to the biased one Keras uses for its moving variance. Everything else goes to the layer's class.
Only the layers of models the engine trains or loads get it (:mod:`kzoo.engine.kernels`); Keras's
``BatchNormalization`` class and other models are left alone.
"""

import types

_MIN_EPSILON = 0.0  # cuDNN's CUDNN_BN_MIN_EPSILON (1e-5) once a GPU is seen; the CPU kernel takes any epsilon


def _eligible(layer, inputs, mask):
    import tensorflow as tf

    axis = layer.axis if isinstance(layer.axis, int) else -1
    return (mask is None and not layer.renorm and not getattr(layer, "synchronized", False)
            and len(inputs.shape) == 4 and axis in (3, -1) and inputs.dtype == tf.float32
            and layer.compute_dtype == "float32" and layer.epsilon >= _MIN_EPSILON
            and getattr(layer.moving_mean, "dtype", None) == "float32")


def _fused_call(self, inputs, training=None, mask=None):
    """``BatchNormalization.call`` through the fused kernel; other cases go to the layer's class."""
    import tensorflow as tf

    inputs = tf.convert_to_tensor(inputs)
    if not _eligible(self, inputs, mask):
        return type(self).call(self, inputs, training=training, mask=mask)
    channels = inputs.shape[-1]
    gamma = self.gamma.value if self.scale else tf.ones((channels,), tf.float32)
    beta = self.beta.value if self.center else tf.zeros((channels,), tf.float32)
    if training and self.trainable:
        outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=gamma, offset=beta, mean=tf.constant([], tf.float32),
            variance=tf.constant([], tf.float32), epsilon=self.epsilon, data_format="NHWC", is_training=True)
        shape = tf.shape(inputs)
        n = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
        variance = variance * ((n - 1.0) / tf.maximum(n, 1.0))  # Bessel-corrected -> biased, as Keras keeps it
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs
    outputs, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=inputs, scale=gamma, offset=beta, mean=self.moving_mean.value, variance=self.moving_variance.value,
        epsilon=self.epsilon, data_format="NHWC", is_training=False)
    return outputs


def accelerate_layer(layer):
    """Give a BatchNormalization layer instance the fused kernel; returns whether it is newly accelerated."""
    global _MIN_EPSILON
    import keras
    import tensorflow as tf

    if type(layer) is not keras.layers.BatchNormalization or is_accelerated(layer):
        return False
    if tf.config.list_physical_devices("GPU"):
        _MIN_EPSILON = 1e-5
    layer.call = types.MethodType(_fused_call, layer)
    return True


def is_accelerated(layer):
    call = layer.__dict__.get("call")
    return getattr(call, "__func__", None) is _fused_call
