"""The torch engine (``kzoo.engine.torch_loop``) trains to the same result as ``fit``; fallbacks say why.

Correctness only: nothing here is timed (throughput lives in ``benchmarks/train_throughput.py``).
"""

import csv
import json

import keras
import numpy as np
import pytest

import kzoo
from kzoo.engine.loops import FitLoop, choose_loop

torch_only = pytest.mark.skipif(keras.backend.backend() != "torch", reason="the torch engine needs the torch backend")
SMALL = dict(limit=2000, batch_size=64, quiet=True, val_split=0.1, epochs=1, seed=0)


def _compiled(name, **options):
    from kzoo.tasks.classification import ClassificationTask

    net = kzoo.create_model(name, input_shape=(28, 28, 1), num_classes=10, **options)
    task = ClassificationTask()
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss=task.loss("sparse_cce"), metrics=task.metrics("sparse_cce"))
    return net


@torch_only
def test_fast_loop_reaches_the_same_accuracy_as_fit(tmp_path):
    fast = kzoo.train("lenet5", engine="torch", output=str(tmp_path / "fast"), **SMALL)
    fit = kzoo.train("lenet5", engine="fit", output=str(tmp_path / "fit"), **SMALL)
    assert fast["accuracy"] > 0.6 and fit["accuracy"] > 0.6
    assert abs(fast["accuracy"] - fit["accuracy"]) < 0.03, (fast["accuracy"], fit["accuracy"])
    assert abs(fast["loss"] - fit["loss"]) < 0.1
    names = sorted(p.name for p in (tmp_path / "fit").iterdir())
    assert sorted(p.name for p in (tmp_path / "fast").iterdir()) == names
    rows = {kind: list(csv.DictReader(open(tmp_path / kind / "metrics.csv"))) for kind in ("fast", "fit")}
    assert list(rows["fast"][0]) == list(rows["fit"][0])  # epoch, accuracy, loss, val_*, epoch_time, lr, ...
    assert abs(float(rows["fast"][0]["val_accuracy"]) - float(rows["fit"][0]["val_accuracy"])) < 0.1  # 200 samples, 29 steps
    fast_model = kzoo.load_model(str(tmp_path / "fast" / "last.keras"))
    assert int(np.asarray(fast_model.optimizer.iterations)) == -(-1800 // 64)


@torch_only
def test_auto_uses_the_torch_engine_and_resume_works(tmp_path):
    net = _compiled("lenet5")
    assert choose_loop("auto", "torch", net, None).name == "torch"
    run = tmp_path / "run"
    kzoo.train("mlp", engine="torch", output=str(run), **dict(SMALL, limit=600))
    kzoo.train(resume=str(run), epochs=2, quiet=True)
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 2
    resumed = kzoo.load_model(str(run / "last.keras"))
    assert int(np.asarray(resumed.optimizer.iterations)) == 2 * -(-540 // 64)
    assert [r["epoch"] for r in csv.DictReader(open(run / "metrics.csv"))] == ["0", "1"]


@torch_only
@pytest.mark.parametrize("name,options", [
    ("lenet5", {}), ("convnet2", {}), ("resnet18", {"small_stem": True}), ("lstm", {}), ("gru", {}), ("rnn", {}),
    ("mlp", {}), ("lenet5", {"pool": "stochastic"}),
])
def test_compiled_graph_computes_what_the_keras_model_computes(name, options):
    import torch

    from kzoo.engine.torch_graph import compile_graph

    net = _compiled(name, **options)
    graph = compile_graph(net)
    if name != "lenet5" or not options:
        assert not graph.fallback, graph.fallback  # every layer of these runs on a native torch kernel
    x = torch.rand(8, 28, 28, 1)
    with torch.no_grad():
        expected = net(x, training=False)
        out, logits, _ = graph.forward(x, False)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    if name in ("lenet5", "resnet18", "lstm") and not options:  # no randomness in training mode
        with torch.no_grad():
            expected = net(x, training=True)
            _, logits, _ = graph.forward(x, True)
        np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), expected.numpy(), rtol=1e-3, atol=1e-5)


@torch_only
@pytest.mark.parametrize("name", ["densenet_small", "googlenet", "nin", "bilstm", "vgg11_bn"])
def test_other_families_compute_the_same_with_keras_fallbacks(name):
    """Layers without a native kernel (Resizing, Bidirectional, strided "same" convs) run as Keras layers."""
    import torch

    from kzoo.engine.torch_graph import compile_graph

    shape = (28, 28) if name == "bilstm" else (32, 32, 3)
    net = kzoo.create_model(name, input_shape=shape, num_classes=5)
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")  # a string loss works too
    x = torch.rand((2,) + shape)
    with torch.no_grad():
        np.testing.assert_allclose(compile_graph(net).forward(x, False)[0].numpy(), net(x, training=False).numpy(),
                                   rtol=1e-4, atol=1e-6)


@torch_only
@pytest.mark.parametrize("shape", [(16, 4, 4, 3), (5, 3), (1, 3)])  # a batch of one sample: Keras's own formula
def test_batch_norm_updates_the_moving_statistics_like_keras(shape):
    import torch

    from kzoo.engine.torch_graph import compile_graph

    inputs = keras.Input(shape[1:])
    outputs = keras.layers.BatchNormalization(momentum=0.9, name="bn")(inputs)
    a, b = keras.Model(inputs, outputs), keras.Model(inputs, outputs)
    x = torch.rand(shape) * 3 + 1
    with torch.no_grad():
        before = [v.numpy().copy() for v in a.get_layer("bn").non_trainable_weights]
        expected = a(x, training=True)
        keras_stats = [v.numpy().copy() for v in a.get_layer("bn").non_trainable_weights]
        for v, value in zip(a.get_layer("bn").non_trainable_weights, before):
            v.assign(value)
        out, _, _ = compile_graph(b).forward(x, True)
        fast_stats = [v.numpy() for v in b.get_layer("bn").non_trainable_weights]
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast_stats[0], keras_stats[0], rtol=1e-6)
    np.testing.assert_allclose(fast_stats[1], keras_stats[1], rtol=1e-6)  # the biased batch variance, as Keras


@torch_only
@pytest.mark.parametrize("schedule,clipnorm", [(False, None), (True, None), (False, 0.5)])
def test_fused_adam_is_keras_adam(schedule, clipnorm):
    import torch

    from kzoo.engine.torch_optim import FusedAdam, KerasApply, optimizer_step

    def make():
        lr = keras.optimizers.schedules.CosineDecay(0.01, 10) if schedule else 0.01
        return keras.optimizers.Adam(lr, clipnorm=clipnorm)  # 0.5: every random gradient is clipped

    from kzoo.engine.torch_graph import restride

    def small():
        inputs = keras.Input((6, 6, 2))
        x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
        return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))

    model_a, model_b = small(), small()
    model_b.set_weights(model_a.get_weights())
    keras_opt, fused_opt = make(), make()
    keras_step = KerasApply(keras_opt, model_a.trainable_variables)
    fused_step = optimizer_step(fused_opt, model_b.trainable_variables)
    assert isinstance(fused_step, FusedAdam)
    kernel = model_b.get_layer("conv").kernel
    restride(kernel, fused_step.slots(kernel))  # the conv kernel and its moments in OIHW memory order
    assert kernel.value.permute(3, 2, 0, 1).is_contiguous()
    generator = torch.Generator().manual_seed(0)
    for _ in range(6):
        grads = [torch.randn(tuple(v.shape), generator=generator) for v in model_a.trainable_variables]
        with torch.no_grad():
            keras_step.apply([g.clone() for g in grads])
            fused_step.apply([g.clone() for g in grads])
    for wa, wb in zip(model_a.get_weights(), model_b.get_weights()):
        np.testing.assert_allclose(wb, wa, rtol=1e-5, atol=1e-6)
    assert int(fused_opt.iterations.numpy()) == int(keras_opt.iterations.numpy()) == 6


class _Penalty(keras.layers.Layer):
    """A layer that adds a loss of its own (``add_loss``), as a user's custom layer may."""

    def call(self, x):
        self.add_loss(0.3 * keras.ops.mean(keras.ops.square(x)))
        return x


def _small_classifier(middle):
    """Dense -> ``middle`` layers -> kzoo's classifier head (Dense logits + float32 softmax)."""
    inputs = keras.Input((6,))
    x = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    for layer in middle:
        x = layer(x)
    logits = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", dtype="float32", name="predictions")(logits))


def _train_like_fit(build, epochs=3, optimizer=lambda: keras.optimizers.Adam(0.02), prepare=None):
    """Train one model with ``fit`` and a copy (same initial weights) with the torch engine, one full batch per
    epoch (so the shuffles do not matter); the two must report the same losses and end with the same weights."""
    from kzoo.engine.loops import seed_everything
    from kzoo.engine.torch_loop import FastTorchLoop as TorchLoop

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)).astype("float32") * 2, rng.integers(0, 3, 40)
    xv, yv = rng.normal(size=(24, 6)).astype("float32") * 2, rng.integers(0, 3, 24)
    seed_everything(0)
    models = [build(), build()]
    models[1].set_weights(models[0].get_weights())
    histories = []
    for model, loop in zip(models, (FitLoop(), TorchLoop())):
        if prepare:
            prepare(model)
        model.compile(optimizer=optimizer(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = loop.run(model, x, y, validation_data=(xv, yv), epochs=epochs, initial_epoch=0, batch_size=len(y),
                           callbacks=[])
        histories.append(history.history)
    fit, fast = histories
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(fast[key], fit[key], rtol=2e-5, atol=1e-6, err_msg=key)
    for variable, reference in zip(models[1].weights, models[0].weights):  # incl. batch-norm moving statistics
        np.testing.assert_allclose(variable.numpy(), reference.numpy(), rtol=1e-4, atol=1e-6, err_msg=variable.path)
    return fit, models


@torch_only
def test_activity_regularizers_are_in_the_loss_as_with_fit():
    _train_like_fit(lambda: _small_classifier(
        [keras.layers.Dense(8, activation="tanh", activity_regularizer=keras.regularizers.L2(0.05))]))


@torch_only
def test_add_loss_layers_are_in_the_loss_as_with_fit():
    _train_like_fit(lambda: _small_classifier([_Penalty(), keras.layers.Dense(8, activation="relu")]))


@torch_only
def test_l2_is_in_the_training_and_validation_loss_as_with_fit():
    from kzoo.engine.trainer import apply_kernel_regularization  # what --l2 does

    _train_like_fit(lambda: _small_classifier([]), prepare=lambda model: apply_kernel_regularization(model, 0.0, 0.02))


@torch_only
def test_batch_norm_moving_statistics_are_keras_own():
    fit, models = _train_like_fit(lambda: _small_classifier([keras.layers.BatchNormalization(momentum=0.5)]))
    bn = [layer for layer in models[1].layers if isinstance(layer, keras.layers.BatchNormalization)][0]
    assert float(np.abs(bn.moving_variance.numpy() - 1.0).max()) > 0.1  # the statistics did move


@torch_only
def test_augmented_model_trains_with_the_torch_engine(tmp_path):
    result = kzoo.train("lenet5", engine="torch", augment=True, output=str(tmp_path / "run"), **dict(SMALL, limit=600))
    assert 0.0 <= result["accuracy"] <= 1.0 and result["epochs_done"] == 1


@torch_only
def test_other_optimizers_and_regularizers_stay_exact():
    """SGD with Nesterov momentum, weight decay, clipnorm, a cosine schedule and L2, as ``kzoo train`` makes them:
    the torch engine's fused SGD matches ``fit`` step for step."""
    from types import SimpleNamespace

    from kzoo.engine.torch_optim import FusedSGD, optimizer_step
    from kzoo.engine.trainer import apply_kernel_regularization, make_optimizer

    config = SimpleNamespace(lr=0.05, epochs=4, schedule="cosine", clipnorm=1.0, weight_decay=1e-2,
                             optimizer="momentum", warmup_epochs=0, ema=0.0)
    optimizer = lambda: make_optimizer(config, steps_per_epoch=1)  # noqa: E731
    probe = _small_classifier([])
    assert isinstance(optimizer_step(optimizer(), probe.trainable_variables), FusedSGD)
    fit, _ = _train_like_fit(lambda: _small_classifier([keras.layers.Dense(8, activation="relu")]), epochs=4,
                             optimizer=optimizer, prepare=lambda model: apply_kernel_regularization(model, 0.0, 1e-3))
    assert fit["loss"][-1] < fit["loss"][0]


def test_the_torch_engine_falls_back_to_fit_with_a_message():
    backend = keras.backend.backend()
    messages = []
    net = _compiled("mlp")
    if backend != "torch":
        loop = choose_loop("torch", backend, net, None, notify=messages.append)
        assert isinstance(loop, FitLoop)
        assert messages == [f"--engine torch is not available on the {backend} backend; using fit."]
        return
    a, b = keras.Input((3,)), keras.Input((3,))
    two = keras.Model([a, b], keras.layers.Dense(2, activation="softmax")(keras.layers.Concatenate()([a, b])))
    two.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    loop = choose_loop("torch", "torch", two, None, notify=messages.append)
    assert isinstance(loop, FitLoop) and "several inputs" in messages[0] and messages[0].endswith("using fit.")
    net.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert isinstance(choose_loop("auto", "torch", net, None, notify=messages.append), FitLoop)
    assert "from_logits" in messages[-1] and messages[-1].endswith("using fit.")


@torch_only
def test_fused_adam_sees_restrided_kernels_as_flat_views_in_memory_order():
    import torch

    from kzoo.engine.torch_optim import _memory_order, _same_order

    oihw = torch.arange(2 * 3 * 3 * 3, dtype=torch.float32).reshape(2, 3, 3, 3)
    hwio = oihw.permute(2, 3, 1, 0)  # a re-strided Keras kernel: HWIO shape, OIHW memory
    flat = _memory_order(hwio)
    assert flat.shape == (54,) and flat.data_ptr() == hwio.data_ptr()  # a view: no copy
    assert torch.equal(flat, oihw.reshape(-1))  # memory order, the same for the gradient and the moments
    assert _memory_order(oihw) is oihw
    one_by_one = torch.zeros(1, 1, 4, 8)
    assert _same_order(one_by_one, one_by_one.as_strided((1, 1, 4, 8), (7, 5, 8, 1)))  # size-1 dims ignored
    assert not _same_order(hwio, hwio.contiguous())


@torch_only
def test_no_training_sample_is_refused_as_fit_refuses_it():
    from kzoo.engine.torch_loop import FastTorchLoop as TorchLoop

    x, y = np.zeros((0, 28, 28, 1), "float32"), np.zeros((0,), "int64")
    messages = []
    for loop in (FitLoop(), TorchLoop()):
        net = _compiled("mlp")
        with pytest.raises(ValueError) as info:
            loop.run(net, x, y, validation_data=None, epochs=1, initial_epoch=0, batch_size=8, callbacks=[])
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "num_samples=0" in messages[0]
