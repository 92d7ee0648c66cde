"""Faster TensorFlow code for Keras layers on the tensorflow backend: fused batch norm, unrolled short RNNs.

Keras 3 (3.15) normalises with separate ops on every backend (``ops.moments``, then ``ops.batch_normalization``:
about ten kernels forward and their gradients backward). TensorFlow has one fused kernel for the common case
(``FusedBatchNormV3``, the one tf.keras 2 used): on this CPU, forward + backward of a 64x28x28x64 batch takes
7.8 ms fused vs 17.4 ms unfused (docs/benchmarks.md). :func:`install` routes every eligible call (a 4-D
channels-last float32 input, no mask, no renorm; on a GPU, epsilon >= 1e-5 as cuDNN requires) to it, with the same variables and the
same results (tests/engine/test_tf_kernels.py): the fused kernel returns the Bessel-corrected batch variance,
which is scaled back to the biased one Keras uses for its moving variance. Everything else stays Keras's own.

Recurrent layers: on a CPU, Keras runs LSTM/GRU/SimpleRNN as a ``tf.while_loop`` over time steps (cuDNN only
on a GPU), whose per-iteration machinery costs more than the small matmuls of each step. Sequences of at most
``MAX_UNROLLED_STEPS`` known steps (sequential MNIST: 28) are unrolled into the graph instead, exactly what the
layer's own ``unroll=True`` does (19 -> 14.5 ms for forward + backward of one 128-unit LSTM layer at batch 64),
without changing the layer or its saved config.

This is backend-specific speed work, so it lives in the engine, never in a model.
"""

import functools

_ORIGINAL_CALL = None
_ORIGINAL_RNN = None
MAX_UNROLLED_STEPS = 32
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


def _rnn(original, step_function, inputs, initial_states, go_backwards=False, mask=None, constants=None,
         unroll=False, input_length=None, time_major=False, zero_output_for_mask=False, return_all_outputs=True):
    import tensorflow as tf

    if not unroll and mask is None:
        first = tf.nest.flatten(inputs)[0]
        steps = first.shape[0 if time_major else 1] if first.shape.rank and first.shape.rank > 1 else None
        unroll = steps is not None and 0 < steps <= MAX_UNROLLED_STEPS
    return original(step_function, inputs, initial_states, go_backwards=go_backwards, mask=mask,
                    constants=constants, unroll=unroll, input_length=input_length, time_major=time_major,
                    zero_output_for_mask=zero_output_for_mask, return_all_outputs=return_all_outputs)


def install():
    """Route Keras BatchNormalization calls to the fused kernel and unroll short RNNs (idempotent)."""
    global _ORIGINAL_CALL, _ORIGINAL_RNN, _MIN_EPSILON
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

    from keras.src import backend as keras_backend

    _ORIGINAL_RNN = keras_backend.rnn
    keras_backend.rnn = functools.partial(_rnn, _ORIGINAL_RNN)
    return True


def uninstall():
    """Restore Keras's own BatchNormalization.call and rnn (used by tests to compare both paths)."""
    global _ORIGINAL_CALL, _ORIGINAL_RNN
    if _ORIGINAL_CALL is None:
        return
    from keras.src import backend as keras_backend
    from keras.src.layers.normalization.batch_normalization import BatchNormalization

    BatchNormalization.call = _ORIGINAL_CALL
    keras_backend.rnn = _ORIGINAL_RNN
    _ORIGINAL_CALL = _ORIGINAL_RNN = None
_ORIGINAL_RNN = None
MAX_UNROLLED_STEPS = 32
_MIN_EPSILON = 0.0  # cuDNN's CUDNN_BN_MIN_EPSILON (1e-5) once a GPU is seen; the CPU kernel takes any epsilon
