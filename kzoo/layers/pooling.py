"""Pooling kinds named in the notes: max, average and stochastic pooling."""

import keras
from keras import layers, ops

POOLING_KINDS = ("max", "avg", "stochastic")


def pool2d(kind, pool_size=2, strides=None, padding="valid", name=None):
    """A 2-D pooling layer of the given kind (``"max"``, ``"avg"`` or ``"stochastic"``)."""
    if kind == "max":
        return layers.MaxPooling2D(pool_size, strides=strides, padding=padding, name=name)
    if kind == "avg":
        return layers.AveragePooling2D(pool_size, strides=strides, padding=padding, name=name)
    if kind == "stochastic":
        return StochasticPooling2D(pool_size, strides=strides, padding=padding, name=name)
    raise ValueError(f"pool must be one of {', '.join(POOLING_KINDS)}. Received: pool={kind!r}")


def _pair(value, argument):
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ValueError(f"{argument} must be a positive int or a pair of them. Received: {argument}={value!r}")
    return pair


@keras.saving.register_keras_serializable(package="kzoo")
class StochasticPooling2D(layers.Layer):
    """Stochastic pooling (Zeiler & Fergus, ICLR 2013, https://arxiv.org/abs/1301.3557).

    Each pooling window of the (channels-last) input is treated as a multinomial distribution with
    ``p_i = a_i / sum_j a_j``. In training one activation is sampled per window and channel; in inference the
    output is the probability-weighted average ``sum_i p_i a_i = sum_i a_i^2 / sum_i a_i``. Activations are
    expected to be non-negative (e.g. after ReLU); negative values are clamped to 0, and a window whose
    activations sum to 0 outputs 0. ``"same"`` padding pads with zeros, which are never sampled.

    Args:
        pool_size: window size, an int or ``(height, width)``.
        strides: step between windows, an int or a pair; ``None`` means ``pool_size``.
        padding: ``"valid"`` or ``"same"`` (TensorFlow's convention: the extra row or column goes at the end).
        seed: seed of the layer's random generator; ``None`` draws one.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else _pair(strides, "strides")
        self.padding = str(padding).lower()
        if self.padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same'. Received: padding={padding!r}")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.input_spec = layers.InputSpec(ndim=4)

    def _output_size(self, size, axis):
        if size is None:
            return None
        window, stride = self.pool_size[axis], self.strides[axis]
        if self.padding == "same":
            return -(-size // stride)
        return max(0, (size - window) // stride + 1)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, self._output_size(height, 0), self._output_size(width, 1), channels)

    def _windows(self, inputs):
        """The pooling windows as a ``(batch, out_h, out_w, pool_h * pool_w, channels)`` tensor."""
        height, width = inputs.shape[1], inputs.shape[2]
        if height is None or width is None:
            raise ValueError(
                f"StochasticPooling2D needs static height and width. Received: input shape {inputs.shape}"
            )
        out_h, out_w = self._output_size(height, 0), self._output_size(width, 1)
        if self.padding == "same":
            pads = []
            for size, out, axis in ((height, out_h, 0), (width, out_w, 1)):
                total = max(0, (out - 1) * self.strides[axis] + self.pool_size[axis] - size)
                pads.append((total // 2, total - total // 2))
            inputs = ops.pad(inputs, ((0, 0), pads[0], pads[1], (0, 0)))
        stride_h, stride_w = self.strides
        windows = [
            inputs[:, i: i + (out_h - 1) * stride_h + 1: stride_h, j: j + (out_w - 1) * stride_w + 1: stride_w, :]
            for i in range(self.pool_size[0])
            for j in range(self.pool_size[1])
        ]
        return ops.stack(windows, axis=3)

    def call(self, inputs, training=False):
        windows = ops.relu(self._windows(inputs))
        if training:
            # Gumbel-max: argmax(log a_i + g_i) with g_i ~ Gumbel(0, 1) picks i with probability a_i / sum a.
            # log 0 = -inf, so zeros are never picked; an all-zero window picks a zero, giving 0.
            uniform = keras.random.uniform(ops.shape(windows), minval=1e-20, maxval=1.0, dtype=windows.dtype,
                                           seed=self.seed_generator)
            scores = ops.stop_gradient(ops.log(windows) - ops.log(-ops.log(uniform)))
            index = ops.expand_dims(ops.argmax(scores, axis=3), 3)
            return ops.squeeze(ops.take_along_axis(windows, index, axis=3), 3)
        total = ops.sum(windows, axis=3)
        positive = total > 0
        weighted = ops.sum(ops.square(windows), axis=3) / ops.where(positive, total, ops.ones_like(total))
        return ops.where(positive, weighted, ops.zeros_like(total))

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": self.pool_size, "strides": self.strides, "padding": self.padding,
                       "seed": self.seed})
        return config
