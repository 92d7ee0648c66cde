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
        keras.utils.set_random_seed(0)
        layer = keras.layers.BatchNormalization(**options)
        layer.build(x.shape)
        if fused:
            assert tf_kernels.accelerate_layer(layer) and not tf_kernels.accelerate_layer(layer)  # idempotent
        values = np.random.default_rng(1)
        for variable in layer.trainable_variables + layer.non_trainable_variables:  # not the trivial 0/1 values
            variable.assign(values.uniform(0.5, 1.5, size=variable.shape).astype("float32"))
        results[fused] = _run(layer, x, training)
    assert len(results[True]) == len(results[False])
    for fused, keras_own in zip(results[True], results[False]):  # float32 sums in another order: 1e-6 of the scale
        np.testing.assert_allclose(fused, keras_own, rtol=0, atol=2e-6 * max(1.0, np.abs(keras_own).max()))


def test_other_cases_keep_keras_own_code():
    import tensorflow as tf

    from kzoo.engine import tf_kernels

    layer = keras.layers.BatchNormalization()
    x = tf.ones((4, 3))  # 2-D: not the fused kernel's case
    assert not tf_kernels._eligible(layer, x, None)
    tf_kernels.accelerate_layer(layer)
    assert layer(x, training=True).shape == (4, 3)
    images = tf.ones((2, 3, 4, 4))

    def built(**options):
        layer = keras.layers.BatchNormalization(**options)
        layer.build(images.shape)
        return layer

    assert not tf_kernels._eligible(built(axis=1), images, None)  # channels first
    assert tf_kernels._eligible(built(epsilon=1e-5), images, None)  # ResNet's epsilon
    assert not tf_kernels._eligible(built(dtype="mixed_bfloat16"), images, None)


def test_other_keras_models_are_untouched_while_kzoo_trains_with_the_kernel(tmp_path, monkeypatch):
    """Building, training and loading kzoo models changes nothing in Keras itself or in other models."""
    import tensorflow as tf

    import kzoo
    from kzoo.engine import tf_kernels
    from kzoo.engine.loops import choose_loop

    keras_call = keras.layers.BatchNormalization.call
    fused_calls = []
    fused_op = tf.raw_ops.FusedBatchNormV3
    monkeypatch.setattr(tf.raw_ops, "FusedBatchNormV3", lambda **k: fused_calls.append(1) or fused_op(**k))

    def plain_model():
        inputs = keras.Input((4, 4, 2))
        return keras.Model(inputs, keras.layers.BatchNormalization(name="plain_bn")(inputs))

    before = plain_model()
    built = kzoo.create_model("densenet_small", input_shape=(16, 16, 1), num_classes=3)
    assert all(not tf_kernels.is_accelerated(layer) for layer in built._flatten_layers())  # built: Keras's own
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(4, 3)(inputs))
    net = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)))
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    loop = choose_loop("auto", "tensorflow", net, None)  # what kzoo.train trains with
    x, y = np.random.default_rng(0).random((8, 8, 8, 1), dtype=np.float32), np.arange(8) % 3
    loop.run(net, x, y, validation_data=None, epochs=1, initial_epoch=0, batch_size=8, callbacks=[])
    assert fused_calls and tf_kernels.is_accelerated(net.get_layer("bn"))  # kzoo's training used the fused kernel
    net.save(tmp_path / "net.keras")
    loaded = kzoo.load_model(str(tmp_path / "net.keras"))
    assert tf_kernels.is_accelerated(loaded.get_layer("bn"))
    assert keras.layers.BatchNormalization.call is keras_call
    after = plain_model()
    calls = len(fused_calls)
    for model in (before, after):
        assert "call" not in vars(model.get_layer("plain_bn"))
        model(np.ones((2, 4, 4, 2), "float32"), training=True)
    assert len(fused_calls) == calls
