"""The notes' building blocks: losses by name, L1/L2 on kernels, activation/pool/padding options."""

import numpy as np
import pytest

import kzoo
from kzoo.engine.trainer import apply_kernel_regularization


def _scored(l2):
    import keras

    keras.utils.set_random_seed(0)
    model = kzoo.create_model("lenet5", input_shape=(28, 28, 1), num_classes=10)
    model.set_weights([np.full(w.shape, 0.01, "float32") for w in model.get_weights()])
    assert apply_kernel_regularization(model, 0.0, l2) == (5 if l2 else 0)
    model.compile(loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((8, 28, 28, 1)).astype("float32")
    return model.evaluate(x, np.arange(8) % 10, verbose=0)


def test_l2_adds_to_the_loss_on_the_same_weights():
    plain, regularised = _scored(0.0), _scored(0.1)
    assert regularised > plain


@pytest.mark.parametrize("loss", ["mse", "mae", "bce", "cce"])
def test_losses_by_name_train_lenet5(loss, tmp_path):
    result = kzoo.train("lenet5", loss=loss, epochs=1, limit=200, batch_size=50, quiet=True,
                        output=str(tmp_path / loss), options={"activation": "sigmoid", "pool": "avg"})
    assert 0.0 <= result["accuracy"] <= 1.0


@pytest.mark.parametrize("model, options", [
    ("vgg11", {"activation": "tanh", "pool": "stochastic", "width_multiplier": 0.05, "fc_units": 8}),
    ("alexnet", {"activation": "sigmoid", "pool": "avg"}),
    ("convnet2", {"activation": "tanh", "pool": "stochastic"}),
    ("lenet5", {"activation": "tanh", "pool": "stochastic", "padding": "same"}),
])
def test_activation_and_pool_options_build(model, options):
    net = kzoo.create_model(model, input_shape=(28, 28, 1), num_classes=10, **options)
    assert net.output.shape[-1] == 10


def test_every_pooling_family_offers_stochastic_pooling():
    for name in ("lenet5", "convnet2", "vgg11", "alexnet"):
        assert "stochastic" in kzoo.model_info(name)["options"]["pool"]["choices"], name
