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


def test_l2_adds_lambda_times_the_squared_kernels_to_the_loss():
    """``Loss = Original Loss + lambda * sum(w**2)`` over the five kernels (all 0.01 here), counted with NumPy."""
    import keras

    plain, regularised = _scored(0.0), _scored(0.1)
    model = kzoo.create_model("lenet5", input_shape=(28, 28, 1), num_classes=10)
    kernels = sum(int(np.prod(w.shape)) for w in model.trainable_weights if w.path.endswith("kernel"))
    keras.backend.clear_session()
    assert regularised - plain == pytest.approx(0.1 * kernels * 0.01 ** 2, rel=1e-4)


@pytest.mark.parametrize("name", ["mse", "mae", "bce", "cce", "sparse_cce"])
def test_losses_by_name_are_the_formulas(name):
    """The classifier's named losses on one-hot (or integer) targets, against their NumPy formulas."""
    from kzoo.tasks.classification import ClassificationTask

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=6).astype("float32")
    labels = rng.integers(0, 4, 6)
    task = ClassificationTask()
    targets = task.targets(labels, 4, name)
    got = float(np.asarray(task.loss(name)(targets, probs)))
    onehot = np.eye(4)[labels]
    expected = {
        "mse": np.mean((onehot - probs) ** 2),
        "mae": np.mean(np.abs(onehot - probs)),
        "bce": -np.mean(onehot * np.log(probs) + (1 - onehot) * np.log(1 - probs)),
        "cce": -np.mean(np.sum(onehot * np.log(probs), axis=1)),
        "sparse_cce": -np.mean(np.log(probs[np.arange(6), labels])),
    }[name]
    assert got == pytest.approx(expected, rel=1e-4)


def test_cce_on_one_hot_targets_trains_like_sparse_cce(tmp_path):
    """The same objective reached two ways (one-hot targets, integer labels): the same run, step for step."""
    runs = {loss: kzoo.train("lenet5", loss=loss, epochs=1, limit=200, batch_size=50, quiet=True, seed=3,
                             output=str(tmp_path / loss), options={"activation": "sigmoid", "pool": "avg"})
            for loss in ("cce", "sparse_cce")}
    assert runs["cce"]["loss"] == pytest.approx(runs["sparse_cce"]["loss"], rel=1e-4)
    assert runs["cce"]["accuracy"] == runs["sparse_cce"]["accuracy"]


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
