"""The torch engine (``kzoo.engine.torch_fast``) trains to the same result as ``fit``; fallbacks say why.

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

    from kzoo.engine.torch_fast import compile_graph

    net = _compiled(name, **options)
    graph = compile_graph(net)
    if name != "lenet5" or not options:
        assert not graph.fallback, graph.fallback  # every layer of these runs on a native torch kernel
    x = torch.rand(8, 28, 28, 1)
    with torch.no_grad():
        expected = net(x, training=False)
        out, logits = graph.forward(x, False)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    if name in ("lenet5", "resnet18", "lstm") and not options:  # no randomness in training mode
        with torch.no_grad():
            expected = net(x, training=True)
            _, logits = graph.forward(x, True)
        np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), expected.numpy(), rtol=1e-3, atol=1e-5)


@torch_only
@pytest.mark.parametrize("name", ["densenet_small", "googlenet", "nin", "bilstm", "vgg11_bn"])
def test_other_families_compute_the_same_with_keras_fallbacks(name):
    """Layers without a native kernel (Resizing, Bidirectional, strided "same" convs) run as Keras layers."""
    import torch

    from kzoo.engine.torch_fast import compile_graph

    shape = (28, 28) if name == "bilstm" else (32, 32, 3)
    net = kzoo.create_model(name, input_shape=shape, num_classes=5)
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")  # a string loss works too
    x = torch.rand((2,) + shape)
    with torch.no_grad():
        np.testing.assert_allclose(compile_graph(net).forward(x, False)[0].numpy(), net(x, training=False).numpy(),
                                   rtol=1e-4, atol=1e-6)


@torch_only
def test_batch_norm_updates_the_moving_statistics_like_keras():
    import torch

    from kzoo.engine.torch_fast import compile_graph

    inputs = keras.Input((4, 4, 3))
    outputs = keras.layers.BatchNormalization(momentum=0.9, name="bn")(inputs)
    a, b = keras.Model(inputs, outputs), keras.Model(inputs, outputs)
    x = torch.rand(16, 4, 4, 3) * 3 + 1
    with torch.no_grad():
        before = [v.numpy().copy() for v in a.get_layer("bn").non_trainable_weights]
        a(x, training=True)
        keras_stats = [v.numpy().copy() for v in a.get_layer("bn").non_trainable_weights]
        for v, value in zip(a.get_layer("bn").non_trainable_weights, before):
            v.assign(value)
        compile_graph(b).forward(x, True)
        fast_stats = [v.numpy() for v in b.get_layer("bn").non_trainable_weights]
    np.testing.assert_allclose(fast_stats[0], keras_stats[0], rtol=1e-5)
    np.testing.assert_allclose(fast_stats[1], keras_stats[1], rtol=2e-2)  # unbiased (torch) vs biased variance


@torch_only
@pytest.mark.parametrize("schedule", [False, True])
def test_fused_adam_is_keras_adam(schedule):
    import torch

    from kzoo.engine.torch_fast import FusedAdam, KerasApply, optimizer_step

    def make():
        lr = keras.optimizers.schedules.CosineDecay(0.01, 10) if schedule else 0.01
        return keras.optimizers.Adam(lr)

    from kzoo.engine.torch_fast import restride

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


@torch_only
def test_augmented_model_trains_with_the_torch_engine(tmp_path):
    result = kzoo.train("lenet5", engine="torch", augment=True, output=str(tmp_path / "run"), **dict(SMALL, limit=600))
    assert 0.0 <= result["accuracy"] <= 1.0 and result["epochs_done"] == 1


@torch_only
def test_other_optimizers_and_regularizers_stay_exact(tmp_path):
    result = kzoo.train("mlp", engine="torch", optimizer="momentum", weight_decay=1e-4, clipnorm=1.0, l2=1e-4,
                        schedule="cosine", output=str(tmp_path / "run"), **dict(SMALL, limit=600))
    assert 0.0 <= result["accuracy"] <= 1.0


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

    from kzoo.engine.torch_fast import _memory_order, _same_order

    oihw = torch.arange(2 * 3 * 3 * 3, dtype=torch.float32).reshape(2, 3, 3, 3)
    hwio = oihw.permute(2, 3, 1, 0)  # a re-strided Keras kernel: HWIO shape, OIHW memory
    flat = _memory_order(hwio)
    assert flat.shape == (54,) and flat.data_ptr() == hwio.data_ptr()  # a view: no copy
    assert torch.equal(flat, oihw.reshape(-1))  # memory order, the same for the gradient and the moments
    assert _memory_order(oihw) is oihw
    one_by_one = torch.zeros(1, 1, 4, 8)
    assert _same_order(one_by_one, one_by_one.as_strided((1, 1, 4, 8), (7, 5, 8, 1)))  # size-1 dims ignored
    assert not _same_order(hwio, hwio.contiguous())
