"""The input adapter: a model whose input is resized runs in inference mode unless told otherwise."""

import keras
import numpy as np

from kzoo.layers import image_inputs


def _resized_model_with_batch_norm():
    inputs, x = image_inputs((8, 8, 1), default_shape=(8, 8, 1), min_size=12)
    x = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(4, 3, name="conv")(x))
    outputs = keras.layers.Dropout(0.5, name="dropout")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def test_a_call_without_training_is_inference():
    model = _resized_model_with_batch_norm()
    assert model.get_layer("resize").output.shape[1:3] == (12, 12)
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype="float32")
    moving_mean = keras.ops.convert_to_numpy(model.get_layer("bn").moving_mean).copy()
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.get_layer("bn").moving_mean), moving_mean)


def test_training_true_still_reaches_batch_norm():
    model = _resized_model_with_batch_norm()
    x = np.random.default_rng(1).random((4, 8, 8, 1), dtype="float32") + 3.0
    model(x, training=True)
    assert np.abs(keras.ops.convert_to_numpy(model.get_layer("bn").moving_mean)).max() > 0
