"""The inference plan (folded batch norm and padding, in-place ReLU and Add) computes what ``model.predict`` does.

The references are Keras's own ``predict`` and the unfused compiled graph; the graphs are built to hit every
rule's edge: a tensor read twice must not be overwritten, an ``Add`` of a tensor with itself, a dropout (whose
output is its input at inference) before a ReLU, the caller's input array, weights changed after a first call.
"""

import keras
import numpy as np
import pytest
from keras import layers

import kzoo
from kzoo.engine.torch_graph import compile_graph

if keras.backend.backend() != "torch":
    pytest.skip("the torch engine's inference plan", allow_module_level=True)

import torch  # noqa: E402

from kzoo.engine.torch_inference import InferencePlan  # noqa: E402


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        value = rng.uniform(0.5, 2.0, shape) if "variance" in variable.path else rng.normal(0.0, 0.3, shape)
        variable.assign(value.astype("float32"))
    return model


def run(plan, x):
    with torch.inference_mode():
        return plan.forward(torch.as_tensor(x)).numpy()


def tricky_model():
    inputs = keras.Input((12, 12, 3))
    p = layers.ZeroPadding2D(1)(inputs)
    a = layers.Conv2D(8, 3, use_bias=False)(p)  # pad + conv + bn: one call
    a = layers.BatchNormalization()(a)
    r = layers.Activation("relu")(a)  # read by three steps below: never overwritten
    b = layers.Conv2D(8, 3, padding="same")(r)
    b = layers.BatchNormalization(center=False, scale=False)(b)  # no gamma, no beta
    s = layers.Add()([r, b])  # b may hold the sum, r may not
    n = layers.Conv2D(8, 3, padding="same")(r)  # no batch norm: a fresh tensor with negative values
    d = layers.Dropout(0.5)(n)  # the identity at inference: d is n
    d = layers.Activation("relu")(d)  # must not overwrite n, which the pooling below still reads
    d = layers.Conv2D(8, 1)(d)
    twice = layers.Add()([s, s])
    c = layers.Conv2D(8, 1, strides=2, padding="same")(r)
    c = layers.ReLU()(layers.BatchNormalization()(c))
    asym = layers.Conv2D(8, 3)(layers.ZeroPadding2D(((1, 0), (0, 1)))(twice))  # asymmetric: not folded
    out = layers.Concatenate()([layers.GlobalAveragePooling2D()(x) for x in (asym, d, c, r, n)])
    out = layers.Dense(5, activation="softmax")(out)
    return keras.Model(inputs, out)


def test_fusions_and_in_place_steps_keep_the_outputs():
    model = randomize(tricky_model())
    plan = InferencePlan(compile_graph(model))
    assert len(plan.fused) == 3, plan.fused  # pad+conv+bn, conv+bn (no gamma/beta), strided 1x1 conv+bn
    x = np.random.default_rng(1).random((4, 12, 12, 3), dtype=np.float32)
    kept = x.copy()
    np.testing.assert_allclose(run(plan, x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(x, kept)  # the caller's array is never written


def test_resnet_with_trained_statistics_equals_predict():
    model = randomize(kzoo.create_model("resnet18", input_shape=(32, 32, 3), num_classes=10))
    plan = InferencePlan(compile_graph(model))
    assert len(plan.fused) == 20  # every convolution of ResNet-18 with its batch norm (and the stem's padding)
    x = np.random.default_rng(2).random((3, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(run(plan, x), model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_folded_weights_follow_weight_changes():
    model = randomize(tricky_model())
    plan = InferencePlan(compile_graph(model))
    x = np.random.default_rng(3).random((2, 12, 12, 3), dtype=np.float32)
    before = run(plan, x)
    randomize(model, seed=7)  # as training or load_weights would: the variables are assigned in place
    after = run(plan, x)
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
