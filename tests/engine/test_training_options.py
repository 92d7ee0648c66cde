"""The training options of issue 27: label smoothing, warmup + cosine, the EMA of the weights (validation and
``best`` use it), their checks and flags. The fused optimizers' weight decay and EMA against Keras's ``apply``:
tests/engine/test_torch_cuda_graph.py."""

import math

import keras
import numpy as np
import pytest

from kzoo.engine import config as cfg
from kzoo.errors import OptionError

torch_only = pytest.mark.skipif(keras.backend.backend() != "torch", reason="the torch engine")


def _probabilities(rng, n=12, classes=5):
    logits = rng.normal(size=(n, classes)).astype("float32") * 2
    return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


def test_sparse_label_smoothing_is_keras_categorical_smoothing_on_one_hot():
    from kzoo.layers import SparseSmoothedCrossentropy

    rng = np.random.default_rng(0)
    probs, labels = _probabilities(rng), rng.integers(0, 5, 12)
    sparse = SparseSmoothedCrossentropy(0.1)
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(5, dtype="float32")[labels], probs)
    for y in (labels, labels[:, None]):  # (batch,) and (batch, 1) labels, as Keras's sparse loss takes
        np.testing.assert_allclose(keras.ops.convert_to_numpy(sparse(y, probs)),
                                   keras.ops.convert_to_numpy(expected), rtol=1e-6)
    restored = keras.losses.deserialize(keras.losses.serialize(sparse))  # in a checkpoint's compile config
    assert type(restored) is SparseSmoothedCrossentropy and restored.label_smoothing == 0.1


def test_label_smoothing_reaches_every_cross_entropy_and_only_those():
    from kzoo.layers import SparseSmoothedCrossentropy, with_label_smoothing

    plain = keras.losses.SparseCategoricalCrossentropy()
    assert with_label_smoothing(plain, 0.0) is plain
    assert isinstance(with_label_smoothing(plain, 0.2), SparseSmoothedCrossentropy)
    assert with_label_smoothing(keras.losses.CategoricalCrossentropy(), 0.2).label_smoothing == 0.2
    assert with_label_smoothing(keras.losses.BinaryCrossentropy(), 0.2).label_smoothing == 0.2
    with pytest.raises(ValueError, match="ignores a class"):
        with_label_smoothing(keras.losses.SparseCategoricalCrossentropy(ignore_class=0), 0.1)
    with pytest.raises(OptionError, match="cross-entropy losses .*Received: loss='mse'"):
        cfg.resolve({"model": "lenet5", "loss": "mse", "label_smoothing": 0.1})


def _dense():
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    logits = keras.layers.Dense(4, name="logits")(hidden)
    return keras.Model(inputs, keras.layers.Activation("softmax", dtype="float32", name="predictions")(logits))


@torch_only
@pytest.mark.parametrize("loss", ["sparse_cce", "cce"])
def test_the_torch_engines_smoothed_loss_is_keras_loss(loss):
    """The engine computes the loss from the logits itself: with label smoothing its training and validation
    losses equal Keras's loss object on the model's probabilities for the same batch (lr 0: one step, no
    change)."""
    from kzoo.engine.torch_loop import FastTorchLoop
    from kzoo.layers import with_label_smoothing

    rng = np.random.default_rng(1)
    x, labels = rng.normal(size=(32, 6)).astype("float32"), rng.integers(0, 4, 32)
    y = labels if loss == "sparse_cce" else np.eye(4, dtype="float32")[labels]
    base = keras.losses.SparseCategoricalCrossentropy() if loss == "sparse_cce" else keras.losses.CategoricalCrossentropy()
    model = _dense()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=with_label_smoothing(base, 0.2), metrics=["accuracy"])
    expected = float(keras.ops.convert_to_numpy(model.loss(y, model(x))))
    unsmoothed = float(keras.ops.convert_to_numpy(base(y, model(x))))
    history = FastTorchLoop().run(model, x, y, validation_data=(x, y), epochs=1, initial_epoch=0, batch_size=32,
                                  callbacks=[]).history
    assert history["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert history["val_loss"][0] == pytest.approx(expected, rel=1e-5)
    assert abs(expected - unsmoothed) > 1e-3  # the smoothing did change the loss


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_warmup_then_the_schedule_is_the_hand_formula_and_serializable(schedule):
    from kzoo.engine.trainer import make_optimizer

    config = cfg.resolve({"model": "lenet5", "lr": 0.1, "epochs": 4, "warmup_epochs": 1.5, "schedule": schedule,
                          "optimizer": "momentum"})
    optimizer = make_optimizer(config, steps_per_epoch=10)  # 40 steps, the first 15 warm up
    rate = optimizer._learning_rate
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(rate))

    def hand(step):
        if step < 15:
            return 0.1 * step / 15
        if schedule == "constant":
            return 0.1
        return 0.1 * 0.5 * (1 + math.cos(math.pi * min(step - 15, 25) / 25))

    for step in range(0, 45):
        for schedule_object in (rate, restored):
            value = float(keras.ops.convert_to_numpy(schedule_object(step)))
            assert value == pytest.approx(hand(step), rel=1e-5, abs=1e-7), step
    with pytest.raises(OptionError, match="warmup_epochs works with schedule constant or cosine"):
        cfg.resolve({"model": "lenet5", "warmup_epochs": 1, "schedule": "step"})
    with pytest.raises(OptionError, match="fewer than the epochs"):
        cfg.resolve({"model": "lenet5", "epochs": 2, "warmup_epochs": 2})


def _ema_run(loop, tmp_path):
    """One epoch with the EMA of the weights, the EMA swapped in for validation and ``best``; returns the
    model, the history and the trained and averaged weights after the epoch (as the checkpoint saw them)."""
    from kzoo.engine.callbacks import RunCheckpoint, ema_validation

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(64, 6)).astype("float32"), rng.integers(0, 4, 64)
    xv, yv = rng.normal(size=(16, 6)).astype("float32"), rng.integers(0, 4, 16)
    model = _dense()
    model.compile(optimizer=keras.optimizers.SGD(0.2, momentum=0.9, use_ema=True, ema_momentum=0.5),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    seen = {}

    class Snapshot(keras.callbacks.Callback):  # after the checkpoint: what the epoch ended with
        def on_epoch_end(self, epoch, logs=None):
            seen["trained"] = [keras.ops.convert_to_numpy(v) for v in self.model.trainable_variables]
            seen["average"] = [keras.ops.convert_to_numpy(v)
                               for v in self.model.optimizer._model_variables_moving_average]

    checkpoint = RunCheckpoint(str(tmp_path), monitor="val_loss", mode="min")
    history = loop.run(model, x, y, validation_data=(xv, yv), epochs=1, initial_epoch=0, batch_size=16,
                       callbacks=[ema_validation(), checkpoint, Snapshot()]).history
    return model, history, seen, (xv, yv)


@pytest.mark.parametrize("engine", ["fit", "torch"])
def test_validation_and_best_use_the_ema_weights_and_last_the_trained_ones(engine, tmp_path):
    from kzoo.engine.checkpoints import load_model
    from kzoo.engine.loops import FitLoop

    if engine == "torch":
        if keras.backend.backend() != "torch":
            pytest.skip("the torch engine")
        from kzoo.engine.torch_loop import FastTorchLoop

        loop = FastTorchLoop()
    else:
        loop = FitLoop()
    model, history, seen, (xv, yv) = _ema_run(loop, tmp_path)
    assert not all(np.allclose(a, b) for a, b in zip(seen["trained"], seen["average"]))
    best = load_model(str(tmp_path / "best.keras"), compile=False).get_weights()
    last = load_model(str(tmp_path / "last.keras"), compile=False).get_weights()
    for b, average, la, trained in zip(best, seen["average"], last, seen["trained"]):
        np.testing.assert_array_equal(b, average)
        np.testing.assert_array_equal(la, trained)
    scorer = _dense()
    scorer.set_weights(seen["average"])
    val_loss = keras.losses.SparseCategoricalCrossentropy()(yv, scorer(xv))
    assert history["val_loss"][0] == pytest.approx(float(keras.ops.convert_to_numpy(val_loss)), rel=1e-5)


def test_options_are_checked_and_on_the_command_line():
    from click.testing import CliRunner

    from kzoo_cli.main import cli

    with pytest.raises(OptionError, match=r"ema must be a momentum in \[0, 1\)"):
        cfg.resolve({"model": "lenet5", "ema": 1.0})
    with pytest.raises(OptionError, match="label_smoothing must be in"):
        cfg.resolve({"model": "lenet5", "label_smoothing": 1.5})
    shown = CliRunner().invoke(cli, ["train", "--help"]).output
    for flag in ("--label-smoothing", "--ema", "--warmup-epochs", "--weight-decay", "--schedule"):
        assert flag in shown


@torch_only
@pytest.mark.parametrize("optimizer", ["momentum", "adamw"])
def test_the_torch_engine_trains_a_conv_net_with_every_option_as_fit(optimizer):
    """Warmup + cosine, weight decay, EMA, label smoothing, on a conv net (kernels and their slots, moving
    averages included, in torch's memory order): the fused step gives ``fit``'s weights and averages."""
    from kzoo.engine.loops import FitLoop, seed_everything
    from kzoo.engine.torch_loop import FastTorchLoop
    from kzoo.engine.torch_optim import KerasApply
    from kzoo.engine.trainer import make_optimizer
    from kzoo.layers import with_label_smoothing

    config = cfg.resolve({"model": "lenet5", "lr": 0.05, "epochs": 6, "warmup_epochs": 2, "schedule": "cosine",
                          "weight_decay": 1e-2, "ema": 0.8, "optimizer": optimizer})
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(24, 6, 6, 1)).astype("float32"), rng.integers(0, 3, 24)

    def net():
        inputs = keras.Input((6, 6, 1))
        x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
        logits = keras.layers.Dense(3, name="logits")(keras.layers.Flatten()(x))
        model = keras.Model(inputs, keras.layers.Activation("softmax", dtype="float32")(logits))
        model.compile(optimizer=make_optimizer(config, steps_per_epoch=1),
                      loss=with_label_smoothing(keras.losses.SparseCategoricalCrossentropy(), 0.1))
        return model

    seed_everything(0)
    fitted, engine = net(), net()
    engine.set_weights(fitted.get_weights())
    start = [keras.ops.convert_to_numpy(v) for v in fitted.trainable_variables]
    fast = FastTorchLoop()
    for loop, model in ((FitLoop(), fitted), (fast, engine)):  # one full batch an epoch: no shuffle to match
        loop.run(model, x, y, validation_data=None, epochs=6, initial_epoch=0, batch_size=24, callbacks=[])
    assert not isinstance(fast.captured_optimizer, KerasApply)
    # fit ends with ``finalize_variable_values``: the weights become the averages; the torch engine keeps both
    averages = [keras.ops.convert_to_numpy(v) for v in engine.optimizer._model_variables_moving_average]
    for a, b, s in zip(fitted.get_weights(), averages, start):
        assert not np.allclose(b, s)
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_every_option_from_a_yaml_file_end_to_end(tmp_path):
    """The YAML keys reach the run (recorded in its config.yaml); best holds the averaged weights."""
    import yaml

    import kzoo

    config = tmp_path / "recipe.yaml"
    config.write_text("model: mlp\nepochs: 2\nbatch_size: 100\nlimit: 300\nquiet: true\noptimizer: momentum\n"
                      "lr: 0.05\nschedule: cosine\nwarmup_epochs: 1\nweight_decay: 0.0005\nlabel_smoothing: 0.1\n"
                      "ema: 0.9\noptions:\n  hidden_sizes: [16]\n")
    result = kzoo.train(config_file=str(config), output=str(tmp_path / "run"))
    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert (stored["warmup_epochs"], stored["label_smoothing"], stored["ema"], stored["weight_decay"]) == (
        1, 0.1, 0.9, 0.0005)
    assert result["epochs_done"] == 2 and (tmp_path / "run" / "best.keras").exists()
