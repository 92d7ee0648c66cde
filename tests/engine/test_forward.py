"""kzoo's inference forward pass (``kzoo.engine.forward``) gives ``model.predict``'s outputs on every backend.

The weights (batch-norm moving statistics included) are random, so a layer computed wrongly shows; nothing
here is timed (speed: ``benchmarks/inference.py``).
"""

import keras
import numpy as np
import pytest

import kzoo
from kzoo.engine.forward import inference_forward
from kzoo.tasks.base import predict_proba

BACKEND = keras.backend.backend()
EXPECTED_PATH = {"torch": "torch graph", "tensorflow": "tf.function", "jax": "jax.jit"}[BACKEND]


def randomize(model, seed=0):
    """Every weight random; variances positive (the moving statistics are not Keras's initial 0 and 1)."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "variance" in variable.path:
            value = rng.uniform(0.5, 2.0, shape)
        else:
            value = rng.normal(0.0, 0.2, shape)
        variable.assign(value.astype(variable.dtype))
    return model


CASES = [
    ("lenet5", (28, 28, 1), {}),
    ("resnet18", (28, 28, 1), {"small_stem": True}),  # batch norm, residual adds, 1x1 strided shortcuts
    ("lstm", (28, 28), {}),  # input batch norm, torch's fused LSTM
    ("gru", (28, 28), {}),
]


@pytest.mark.parametrize("name,shape,options", CASES, ids=[c[0] for c in CASES])
def test_forward_equals_predict(name, shape, options):
    model = randomize(kzoo.create_model(name, input_shape=shape, num_classes=10, **options))
    x = np.random.default_rng(1).random((7,) + shape, dtype=np.float32)
    weights = [w.copy() for w in model.get_weights()]
    expected = model.predict(x, batch_size=7, verbose=0)
    forward = inference_forward(model)
    assert forward.path == EXPECTED_PATH, forward.reason
    got = forward(x)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-4)
    # batches of other sizes (the last one shorter), through predict_proba as kzoo evaluate calls it
    np.testing.assert_allclose(predict_proba(model, x, batch_size=3, forward=inference_forward), expected, atol=1e-5, rtol=1e-4)
    # the weights are the same values afterwards (the torch path only changes kernels' memory order), and
    # Keras computes the same outputs with them
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_allclose(model.predict(x, batch_size=7, verbose=0), expected, atol=1e-6)


def test_forward_follows_weight_changes():
    model = kzoo.create_model("lenet5", input_shape=(28, 28, 1), num_classes=10)
    x = np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32)
    forward = inference_forward(model)
    forward(x)
    randomize(model, seed=3)
    np.testing.assert_allclose(forward(x), model.predict(x, verbose=0), atol=1e-5, rtol=1e-4)


def test_a_model_the_graph_cannot_take_runs_as_keras():
    inputs = keras.Input((5, 3))
    masked = keras.layers.Masking(0.0)(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.LSTM(4)(masked))
    model = randomize(keras.Model(inputs, outputs))
    x = np.random.default_rng(2).random((6, 5, 3)).astype("float32")
    x[:, 3:] = 0.0  # masked steps: an unmasked LSTM would give other outputs
    forward = inference_forward(model)
    if BACKEND == "torch":
        assert (forward.path, forward.reason) == ("keras call", "it uses masks")
    np.testing.assert_allclose(forward(x), model.predict(x, verbose=0), atol=1e-5, rtol=1e-4)
