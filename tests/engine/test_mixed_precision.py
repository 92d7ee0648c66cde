"""``--mixed-precision``: trained by the backend's engine (never handed to fit for it), float32 weights that a
float32 build loads, the accuracy of float32, and Keras's global dtype policy put back after the run.

Compared with independent references: a float32 run of the same model, ``keras.Model.fit`` under the same
policy, and the test accuracy recomputed with numpy from a plain float32 build. Nothing here is timed
(``benchmarks/train_throughput.py --mixed-precision``).
"""

import json

import keras
import numpy as np
import pytest
import yaml

import kzoo
from kzoo.engine import precision
from kzoo.engine.loops import FitLoop, choose_loop, seed_everything

BACKEND = keras.backend.backend()
ENGINE = {"torch": "torch", "tensorflow": "tf", "jax": "fit"}[BACKEND]  # what `kzoo train` uses on a CPU
torch_only = pytest.mark.skipif(BACKEND != "torch", reason="the torch engine needs the torch backend")
# jax compiles LeNet-5's convolutions slowly on 2 cores: the MLP there (matrix products under the policy too)
MODEL = "mlp" if BACKEND == "jax" else "lenet5"


def _config(run_dir):
    return yaml.safe_load((run_dir / "config.yaml").read_text())


@pytest.fixture(autouse=True)
def _float32_policy():
    yield
    keras.config.set_dtype_policy("float32")  # whatever a failing test left behind


def test_mixed_run_matches_float32_accuracy_in_the_engine_and_keeps_float32_weights(tmp_path):
    # a few hundred steps on the embedded digits: 2,700 samples x 3 epochs at batch 32
    common = dict(limit=3000, batch_size=32, epochs=3, val_split=0.1, seed=0, quiet=True)
    mixed = kzoo.train(MODEL, mixed_precision=True, output=str(tmp_path / "mixed"), **common)
    plain = kzoo.train(MODEL, output=str(tmp_path / "plain"), **common)
    assert mixed["accuracy"] > 0.85 and plain["accuracy"] > 0.85  # chance: 0.1
    assert abs(mixed["accuracy"] - plain["accuracy"]) < 0.03
    config = _config(tmp_path / "mixed")
    assert config["engine_used"] == ENGINE and config["mixed_precision"] is True
    assert config["dtype_policy"] == "mixed_bfloat16"  # every CPU computes in bfloat16

    # the checkpoint's weights are float32 and a plain float32 build scores with them what the run reported
    assert keras.config.dtype_policy().name == "float32"
    build = kzoo.create_model(MODEL, input_shape=(28, 28, 1), num_classes=10)
    build.load_weights(str(tmp_path / "mixed" / "best.weights.h5"))
    assert {w.dtype for w in build.weights} == {"float32"}
    assert {layer.dtype_policy.name for layer in build._flatten_layers(include_self=False)} == {"float32"}
    from kzoo.data import load_dataset
    from kzoo.tasks.base import images_to_float

    data = load_dataset("mnist_embedded")
    x, y = images_to_float(data.x_test[:3000]), data.y_test[:3000]
    probabilities = np.asarray(build.predict(x, batch_size=500, verbose=0), dtype=np.float64)
    recomputed = float(np.mean(probabilities.argmax(-1) == y))
    assert abs(recomputed - mixed["accuracy"]) < 0.01  # float32 vs bfloat16 arithmetic on the same weights
    report = json.loads((tmp_path / "mixed" / "metrics.json").read_text())
    assert report["accuracy"] == mixed["accuracy"]


def test_a_float32_run_after_a_mixed_run_trains_float32_in_the_engine(tmp_path):
    common = dict(limit=256, batch_size=64, epochs=1, quiet=True)
    kzoo.train("mlp", mixed_precision=True, output=str(tmp_path / "mixed"), **common)
    assert keras.config.dtype_policy().name == "float32"  # put back after the run
    kzoo.train("mlp", output=str(tmp_path / "plain"), **common)
    config = _config(tmp_path / "plain")
    assert config["dtype_policy"] == "float32" and config["engine_used"] == ENGINE
    assert _config(tmp_path / "mixed")["engine_used"] == ENGINE


def test_the_policy_is_put_back_when_the_run_fails(tmp_path, monkeypatch):
    import kzoo.memory

    def too_large(*args, **kwargs):
        raise kzoo.KzooError("too large")

    monkeypatch.setattr(kzoo.memory, "check_training_fits", too_large)  # after the model was built mixed
    with pytest.raises(kzoo.KzooError, match="too large"):
        kzoo.train("mlp", mixed_precision=True, limit=64, quiet=True, output=str(tmp_path / "run"))
    assert keras.config.dtype_policy().name == "float32"


def _small_classifier():
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    x = keras.layers.Dense(10)(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", dtype="float32")(x))


@torch_only
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_the_torch_engine_trains_a_mixed_model_as_fit_does(policy):
    """The engine under autocast (and Keras's LossScaleOptimizer for float16) against ``fit`` under the same
    policy, from the same weights: their losses differ by no more than half precision itself moves them
    (``fit`` in float32 vs ``fit`` under the policy), and the variables stay float32."""
    from kzoo.engine.torch_loop import FastTorchLoop

    rng = np.random.default_rng(0)
    x, y = rng.random((256, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 256)
    seed_everything(0)
    keras.config.set_dtype_policy(policy)
    models = [_small_classifier(), _small_classifier()]
    keras.config.set_dtype_policy("float32")
    models.append(_small_classifier())
    for model in models[1:]:
        model.set_weights(models[0].get_weights())
    histories = []
    for model, loop in zip(models, (FitLoop(), FastTorchLoop(), FitLoop())):
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        assert loop.supports(model, None) == (True, "")
        # one full batch an epoch: fit and the engine see the same batches (their shuffles differ)
        histories.append(loop.run(model, x, y, validation_data=(x[:64], y[:64]), epochs=4, initial_epoch=0,
                                  batch_size=len(y), callbacks=[]).history)
    fit, engine, float32 = ({k: np.array(v) for k, v in h.items()} for h in histories)
    for key in ("loss", "val_loss"):
        noise = np.abs(fit[key] - float32[key])
        assert np.all(np.abs(engine[key] - fit[key]) <= np.maximum(2 * noise, 0.005 * fit[key])), (key, engine[key],
                                                                                                 fit[key], float32[key])
    assert engine["loss"][-1] < engine["loss"][0]
    assert {v.dtype for v in models[1].weights} == {"float32"}
    if policy == "mixed_float16":  # Keras's loss scaling: its scale is used and kept, as in fit
        optimizer = models[1].optimizer
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        assert int(optimizer.iterations.numpy()) == int(models[0].optimizer.iterations.numpy()) == 4
        assert float(optimizer.dynamic_scale.numpy()) == float(models[0].optimizer.dynamic_scale.numpy())


@torch_only
def test_float16_where_the_device_has_no_bfloat16(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "bf16_capable", lambda backend: False)
    kzoo.train("lenet5", mixed_precision=True, limit=256, batch_size=64, epochs=1, quiet=True,
               output=str(tmp_path / "run"))
    config = _config(tmp_path / "run")
    assert config["dtype_policy"] == "mixed_float16" and config["engine_used"] == "torch"
    keras.config.set_dtype_policy("mixed_float16")  # as a resumed run loads it
    net = keras.saving.load_model(str(tmp_path / "run" / "last.keras"))
    keras.config.set_dtype_policy("float32")
    assert isinstance(net.optimizer, keras.optimizers.LossScaleOptimizer)  # Keras's loss scaling, its state saved
    assert int(net.optimizer.iterations.numpy()) == 4 and float(net.optimizer.dynamic_scale.numpy()) > 1
    assert {w.dtype for w in net.weights} == {"float32"}
    resumed = kzoo.train(resume=str(tmp_path / "run"), epochs=2, quiet=True)  # the scale's state resumes too
    assert resumed["epochs_done"] == 2 and np.isfinite(resumed["loss"])


@torch_only
def test_the_masked_torch_loop_trains_mixed_models():
    """An encoder-decoder (several inputs, masks): the masked loop under autocast, against fit."""
    from kzoo.engine.torch_masked_loop import MaskedTorchLoop

    rng = np.random.default_rng(0)
    n = 32
    source = rng.integers(1, 20, (n, 6)).astype("int32")
    target_in = rng.integers(1, 16, (n, 6)).astype("int32")
    target_out = rng.integers(1, 16, (n, 6)).astype("int32")
    keras.config.set_dtype_policy("mixed_bfloat16")
    seed_everything(0)
    build = lambda: kzoo.create_model("seq2seq", input_shape=(6, 6), num_classes=16, source_vocab=20,  # noqa: E731
                                      units=8, embedding_dim=4, dropout=0.0)
    models = [build(), build()]
    keras.config.set_dtype_policy("float32")
    models[1].set_weights(models[0].get_weights())
    losses = []
    for model, loop in zip(models, (FitLoop(), MaskedTorchLoop())):
        model.compile(optimizer=keras.optimizers.Adam(0.02), loss=keras.losses.SparseCategoricalCrossentropy(),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        assert loop.supports(model, None)[0]
        losses.append(loop.run(model, [source, target_in], target_out, validation_data=None, epochs=3,
                               initial_epoch=0, batch_size=n, callbacks=[]).history["loss"])
    np.testing.assert_allclose(losses[1], losses[0], rtol=0.03)
    assert choose_loop("auto", "torch", models[1], None).name == "torch"


def test_mixed_precision_picks_bfloat16_on_a_cpu():
    assert precision.mixed_policy_name(BACKEND) == "mixed_bfloat16"
    previous = precision.use_mixed_policy(BACKEND)
    try:
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    finally:
        precision.restore_policy(previous)
    assert keras.config.dtype_policy().name == "float32"
