"""TensorFlow's fused batch-norm kernel for Keras ``BatchNormalization`` layers on the tensorflow backend.

Keras 3 (3.15) normalises with separate ops on every backend (``ops.moments``, then ``ops.batch_normalization``:
about ten kernels forward and their gradients backward). TensorFlow has one fused kernel for the common case
(``FusedBatchNormV3``, the one tf.keras 2 used): on this CPU, forward + backward of a 64x28x28x64 batch takes
7.8 ms fused vs 17.4 ms unfused (docs/benchmarks.md). :func:`install` routes every eligible call (a 4-D
channels-last float32 input, no mask, no renorm; on a GPU, epsilon >= 1e-5 as cuDNN requires) to it, with the same variables and the
same results (tests/engine/test_tf_kernels.py): the fused kernel returns the Bessel-corrected batch variance,
which is scaled back to the biased one Keras uses for its moving variance. Everything else stays Keras's own.
This is backend-specific speed work, so it lives in the engine, never in a model.
"""

import functools

_ORIGINAL_CALL = None
_MIN_EPSILON = 0.0  # cuDNN's CUDNN_BN_MIN_EPSILON (1e-5) once a GPU is seen; the CPU kernel takes any epsilon


def _eligible(layer, inputs, mask):
    import tensorflow as tf

    axis = layer.axis if isinstance(layer.axis, int) else -1
    return (mask is None and not layer.renorm and not getattr(layer, "synchronized", False)
            and len(inputs.shape) == 4 and axis in (3, -1) and inputs.dtype == tf.float32
            and layer.compute_dtype == "float32" and layer.epsilon >= _MIN_EPSILON
            and getattr(layer.moving_mean, "dtype", None) == "float32")


def _fused_call(original, self, inputs, training=None, mask=None):
    import tensorflow as tf

    inputs = tf.convert_to_tensor(inputs)
    if not _eligible(self, inputs, mask):
        return original(self, inputs, training=training, mask=mask)
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


def install():
    """Route Keras BatchNormalization calls on the tensorflow backend to the fused kernel (idempotent)."""
    global _ORIGINAL_CALL, _MIN_EPSILON
    import keras

    if _ORIGINAL_CALL is not None or keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    _MIN_EPSILON = 1e-5 if tf.config.list_physical_devices("GPU") else 0.0
    from keras.src.layers.normalization.batch_normalization import BatchNormalization

    original = BatchNormalization.call
    _ORIGINAL_CALL = original

    @functools.wraps(original)
    def call(self, inputs, training=None, mask=None):
        return _fused_call(original, self, inputs, training=training, mask=mask)

    BatchNormalization.call = call
    return True


def uninstall():
    """Restore Keras's own BatchNormalization.call (used by tests to compare both paths)."""
    global _ORIGINAL_CALL
    if _ORIGINAL_CALL is None:
        return
    from keras.src.layers.normalization.batch_normalization import BatchNormalization

    BatchNormalization.call = _ORIGINAL_CALL
    _ORIGINAL_CALL = None
_MIN_EPSILON = 0.0  # cuDNN's CUDNN_BN_MIN_EPSILON (1e-5) once a GPU is seen; the CPU kernel takes any epsilon
