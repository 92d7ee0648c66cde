"""kzoo's fused batch norm on tensorflow computes exactly what Keras's own BatchNormalization computes."""

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tensorflow's fused kernel")


def _run(layer, x, training):
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(y * tf.cos(y))
    grads = tape.gradient(loss, [x] + layer.trainable_variables)
    return [y.numpy()] + [g.numpy() for g in grads] + [v.numpy() for v in layer.non_trainable_variables]


@pytest.mark.parametrize("options", [{}, {"center": False}, {"scale": False, "momentum": 0.5}, {"epsilon": 1e-5}])
@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_equals_keras(options, training):
    from kzoo.engine import tf_kernels

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(8, 5, 5, 6)) * 3 + 1).astype("float32")
    results = {}
    for fused in (False, True):
        tf_kernels.uninstall()
        if fused:
            assert tf_kernels.install()
        keras.utils.set_random_seed(0)
        layer = keras.layers.BatchNormalization(**options)
        layer.build(x.shape)
        values = np.random.default_rng(1)
        for variable in layer.trainable_variables + layer.non_trainable_variables:  # not the trivial 0/1 values
            variable.assign(values.uniform(0.5, 1.5, size=variable.shape).astype("float32"))
        results[fused] = _run(layer, x, training)
    tf_kernels.install()
    assert len(results[True]) == len(results[False])
    for fused, keras_own in zip(results[True], results[False]):  # float32 sums in another order: 1e-6 of the scale
        np.testing.assert_allclose(fused, keras_own, rtol=0, atol=2e-6 * max(1.0, np.abs(keras_own).max()))


def test_other_cases_keep_keras_own_code():
    import tensorflow as tf

    from kzoo.engine import tf_kernels

    tf_kernels.install()
    layer = keras.layers.BatchNormalization()
    x = tf.ones((4, 3))  # 2-D: not the fused kernel's case
    assert not tf_kernels._eligible(layer, x, None)
    assert layer(x, training=True).shape == (4, 3)
    images = tf.ones((2, 3, 4, 4))

    def built(**options):
        layer = keras.layers.BatchNormalization(**options)
        layer.build(images.shape)
        return layer

    assert not tf_kernels._eligible(built(axis=1), images, None)  # channels first
    assert tf_kernels._eligible(built(epsilon=1e-5), images, None)  # ResNet's epsilon
    assert not tf_kernels._eligible(built(dtype="mixed_bfloat16"), images, None)
