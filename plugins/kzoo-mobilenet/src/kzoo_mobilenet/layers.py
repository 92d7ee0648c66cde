"""Keras layers of the plugin, serialisable under the package name ``kzoo_mobilenet``.

A saved model records each layer as ``"kzoo_mobilenet>Fire"``; kzoo imports this module (entry-point group
``kzoo.layers``) before loading a ``.keras`` file, which registers the class again.
"""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="kzoo_mobilenet")
class Fire(layers.Layer):
    """SqueezeNet's Fire module: a 1x1 "squeeze" convolution feeding parallel 1x1 and 3x3 "expand" ones.

    Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size",
    2016. Every convolution has a bias and a ReLU; the two expand outputs are concatenated on the channel axis.

    Args:
        squeeze: filters of the 1x1 squeeze convolution.
        expand1x1: filters of the 1x1 expand convolution.
        expand3x3: filters of the 3x3 expand convolution ("same" padding).
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: a channels-last tensor ``(batch, height, width, channels)``.

    Returns:
        A tensor ``(batch, height, width, expand1x1 + expand3x3)``.
    """

    def __init__(self, squeeze, expand1x1, expand3x3, **kwargs):
        super().__init__(**kwargs)
        for key, value in (("squeeze", squeeze), ("expand1x1", expand1x1), ("expand3x3", expand3x3)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Fire expects a positive integer {key}. Received: {key}={value!r}")
        self.squeeze = squeeze
        self.expand1x1 = expand1x1
        self.expand3x3 = expand3x3
        policy = self.dtype_policy
        self.squeeze_conv = layers.Conv2D(squeeze, 1, activation="relu", dtype=policy, name="squeeze")
        self.expand1x1_conv = layers.Conv2D(expand1x1, 1, activation="relu", dtype=policy, name="expand1x1")
        self.expand3x3_conv = layers.Conv2D(expand3x3, 3, padding="same", activation="relu", dtype=policy,
                                            name="expand3x3")

    def build(self, input_shape):
        self.squeeze_conv.build(input_shape)
        squeezed = (*input_shape[:-1], self.squeeze)
        self.expand1x1_conv.build(squeezed)
        self.expand3x3_conv.build(squeezed)

    def call(self, inputs):
        x = self.squeeze_conv(inputs)
        return ops.concatenate([self.expand1x1_conv(x), self.expand3x3_conv(x)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.expand1x1 + self.expand3x3)

    def macs_per_sample(self, input_shape, output_shape):
        """Multiply-accumulates of one sample, for ``kzoo summary``: the three convolutions."""
        pixels = output_shape[1] * output_shape[2]
        return pixels * self.squeeze * (input_shape[-1] + self.expand1x1 + 9 * self.expand3x3)

    def get_config(self):
        return {**super().get_config(), "squeeze": self.squeeze, "expand1x1": self.expand1x1,
                "expand3x3": self.expand3x3}
