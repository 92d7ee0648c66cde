"""ImageNormalization against the publishers' own preprocessing functions."""

import keras
import numpy as np
import pytest

from kzoo.layers import ImageNormalization


@pytest.mark.parametrize("mode,publisher", [
    ("caffe", keras.applications.vgg16.preprocess_input),  # RGB->BGR, 0-255, minus the BGR mean
    ("imagenet", keras.applications.densenet.preprocess_input),  # [0, 1], ImageNet mean / std
])
def test_matches_keras_applications_preprocess_input(mode, publisher):
    x = np.random.default_rng(0).random((2, 5, 7, 3), dtype="float32")
    expected = publisher(x * 255.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ImageNormalization(mode)(x)), expected, rtol=1e-5, atol=1e-4)


def test_grayscale_uses_the_mean_of_the_channel_statistics():
    x = np.random.default_rng(1).random((2, 4, 4, 1), dtype="float32")
    out = keras.ops.convert_to_numpy(ImageNormalization("imagenet")(x))
    np.testing.assert_allclose(out, (x - np.mean([0.485, 0.456, 0.406])) / np.mean([0.229, 0.224, 0.225]), rtol=1e-5)


def test_saved_in_a_keras_file(tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, ImageNormalization("caffe", name="norm")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(2).random((1, 4, 4, 3), dtype="float32")
    assert loaded.get_layer("norm").mode == "caffe"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)))


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="Received: mode='tf'"):
        ImageNormalization("tf")
