"""Stochastic pooling against a NumPy reference, on whichever backend KERAS_BACKEND selects."""

import keras
import numpy as np
import pytest

import kzoo
from kzoo.layers import POOLING_KINDS, StochasticPooling2D, pool2d

CONFIGS = [
    {"pool_size": 2},
    {"pool_size": 3, "strides": 2},
    {"pool_size": 3, "strides": 2, "padding": "same"},
    {"pool_size": (2, 3), "strides": 1},
]


def numpy_windows(x, pool_size, strides=None, padding="valid"):
    """``(batch, out_h, out_w, pool_h * pool_w, channels)`` windows, zero padding as TensorFlow places it."""
    pool = (pool_size, pool_size) if isinstance(pool_size, int) else tuple(pool_size)
    step = pool if strides is None else ((strides, strides) if isinstance(strides, int) else tuple(strides))
    if padding == "same":
        pads = [(0, 0)]
        for size, window, stride in zip(x.shape[1:3], pool, step):
            out = -(-size // stride)
            total = max(0, (out - 1) * stride + window - size)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, pads + [(0, 0)])
    out_h = (x.shape[1] - pool[0]) // step[0] + 1
    out_w = (x.shape[2] - pool[1]) // step[1] + 1
    windows = np.empty((x.shape[0], out_h, out_w, pool[0] * pool[1], x.shape[3]), x.dtype)
    for r in range(out_h):
        for c in range(out_w):
            patch = x[:, r * step[0]: r * step[0] + pool[0], c * step[1]: c * step[1] + pool[1], :]
            windows[:, r, c] = patch.reshape(x.shape[0], -1, x.shape[3])
    return windows


def numpy_inference(x, **config):
    windows = np.maximum(numpy_windows(x.astype(np.float64), **config), 0.0)
    total = windows.sum(axis=3)
    squares = (windows ** 2).sum(axis=3)
    return np.where(total > 0, squares / np.where(total > 0, total, 1.0), 0.0)


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_inference_matches_numpy(config):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 8, 3)).astype("float32")  # negatives exercise the clamp
    x[0, :3, :3, 0] = 0.0  # all-zero windows
    layer = StochasticPooling2D(**config, seed=1)
    got = keras.ops.convert_to_numpy(layer(x, training=False))
    expected = numpy_inference(x, **config)
    assert got.shape == expected.shape == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_training_picks_a_value_of_the_window(config):
    rng = np.random.default_rng(1)
    x = np.maximum(rng.normal(size=(4, 9, 8, 3)), 0.0).astype("float32")
    layer = StochasticPooling2D(**config, seed=2)
    got = keras.ops.convert_to_numpy(layer(x, training=True))
    windows = numpy_windows(x, **config)
    assert got.shape == windows.shape[:3] + windows.shape[4:]
    matches = np.isclose(windows, got[:, :, :, None, :], rtol=0.0, atol=0.0)
    assert matches.any(axis=3).all()
    assert ((got > 0) | (windows.sum(axis=3) == 0)).all()  # a zero is picked only from an all-zero window


def test_training_samples_in_proportion_to_the_values():
    values = np.array([[0.0, 1.0], [3.0, 4.0]], "float32")
    draws = 20_000
    x = np.broadcast_to(values[None, :, :, None], (draws, 2, 2, 1)).copy()
    got = keras.ops.convert_to_numpy(StochasticPooling2D(2, seed=3)(x, training=True)).ravel()
    counts = np.array([(got == v).sum() for v in (0.0, 1.0, 3.0, 4.0)])
    assert counts.sum() == draws and counts[0] == 0
    expected = draws * np.array([1.0, 3.0, 4.0]) / 8.0
    chi_square = (((counts[1:] - expected) ** 2) / expected).sum()
    assert chi_square < 13.8  # the 0.1% critical value of chi-square with 2 degrees of freedom


def test_all_zero_window_gives_zero():
    x = np.zeros((3, 4, 4, 2), "float32")
    x[:, 2:, 2:, :] = -1.0  # negatives are clamped to zero too
    layer = StochasticPooling2D(2, seed=4)
    for training in (False, True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=training)), 0.0)


def test_symbolic_batch_and_config_round_trip():
    layer = StochasticPooling2D(3, strides=2, padding="same", seed=5, name="sp")
    output = layer(keras.Input((9, 8, 3)))
    assert tuple(output.shape) == (None, 5, 4, 3)
    clone = StochasticPooling2D.from_config(layer.get_config())
    assert (clone.pool_size, clone.strides, clone.padding, clone.seed) == ((3, 3), (2, 2), "same", 5)


def test_invalid_arguments_say_what_was_received():
    with pytest.raises(ValueError, match="padding='full'"):
        StochasticPooling2D(padding="full")
    with pytest.raises(ValueError, match="pool_size=0"):
        StochasticPooling2D(0)
    with pytest.raises(ValueError, match="pool='median'"):
        pool2d("median")


def test_pool2d_knows_stochastic():
    assert "stochastic" in POOLING_KINDS
    assert isinstance(pool2d("stochastic", 2), StochasticPooling2D)


def test_saved_model_round_trip(tmp_path):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    outputs = StochasticPooling2D(2, seed=6, name="sp")(x)
    model = keras.Model(inputs, outputs)
    path = tmp_path / "stochastic.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("sp"), StochasticPooling2D)
    x = np.random.default_rng(7).random((2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_lenet5_with_stochastic_pooling_trains():
    model = kzoo.create_model("lenet5", input_shape=(28, 28, 1), pool="stochastic")
    assert isinstance(model.get_layer("s2_pool"), StochasticPooling2D)
    rng = np.random.default_rng(8)
    x = rng.random((4, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, size=4)
    assert model.predict(x, verbose=0).shape == (4, 10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
