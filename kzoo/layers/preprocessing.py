"""Input normalisation that travels with published weights, inside the model graph.

kzoo feeds every image model RGB (or grayscale) values in [0, 1]. Weights trained elsewhere expect their
publisher's preprocessing; this layer applies it as the model's first operation, so ``predict``,
``evaluate`` and a saved ``.keras`` file stay right without the user knowing:

- ``"imagenet"``: ``(x - mean) / std`` with ImageNet's RGB mean (0.485, 0.456, 0.406) and std (0.229, 0.224,
  0.225), as torchvision's transforms and keras.applications' ``"torch"`` mode (DenseNet) do;
- ``"caffe"``: RGB to BGR, scaled to [0, 255], minus ImageNet's BGR mean (103.939, 116.779, 123.68), as
  keras.applications' VGG16/19 ``preprocess_input`` does.

A one-channel input (grayscale data with weights whose first convolution was summed over RGB) is normalised
with the mean of the three channel means and standard deviations.
"""

import keras
from keras import ops

MODES = ("none", "imagenet", "caffe")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="kzoo")
class ImageNormalization(keras.layers.Layer):
    """Normalise ``[0, 1]`` channels-last images the way a publisher's weights expect.

    Args:
        mode: ``"imagenet"`` (torchvision, keras.applications DenseNet) or ``"caffe"`` (keras.applications VGG).
    """

    def __init__(self, mode="imagenet", **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES[1:]:
            raise ValueError(f"mode must be one of {', '.join(MODES[1:])}. Received: mode={mode!r}")
        self.mode = mode

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels not in (1, 3):
            raise ValueError(f"ImageNormalization takes 1 or 3 channels. Received: input_shape={input_shape}")
        if self.mode == "imagenet":
            scale, mean, std = 1.0, IMAGENET_MEAN, IMAGENET_STD
        else:
            scale, mean, std = 255.0, CAFFE_BGR_MEAN, (1.0, 1.0, 1.0)
        if channels == 1:
            mean, std = (sum(mean) / 3,), (sum(std) / 3,)
        self._flip = self.mode == "caffe" and channels == 3
        # x * scale / std - mean / std, as one multiply-add with constants
        self._multiplier = tuple(scale / s for s in std)
        self._offset = tuple(m / s for m, s in zip(mean, std))

    def call(self, inputs):
        x = ops.flip(inputs, axis=-1) if self._flip else inputs
        multiplier = ops.convert_to_tensor(self._multiplier, dtype=x.dtype)
        offset = ops.convert_to_tensor(self._offset, dtype=x.dtype)
        return x * multiplier - offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def normalized_inputs(x, mode):
    """``x`` normalised for ``mode`` (one of :data:`MODES`); ``"none"`` returns ``x`` unchanged."""
    if mode in (None, "none"):
        return x
    return ImageNormalization(mode, name="input_normalization")(x)
