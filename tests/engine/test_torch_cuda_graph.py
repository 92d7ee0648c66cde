"""The torch engine's CUDA-graph step (``kzoo.engine.torch_cuda_graph``), everything around the graph itself.

The CPU suite cannot replay a CUDA graph; it checks what the graph relies on: the copy into static buffers, the
partial batch run eagerly, every batch trained exactly once around warm-up and capture, the fallback decisions
with their reasons, device-side learning rates and counters (the engine over static buffers trains to the same
weights as the eager engine, bit for bit, and as ``fit``). ``benchmarks/gpu_engine_check.py`` compares captured
and eager training on a GPU.
"""

import keras
import numpy as np
import pytest

torch_only = pytest.mark.skipif(keras.backend.backend() != "torch", reason="CUDA graphs are torch-only")
pytestmark = torch_only


@pytest.fixture
def graphs():
    from kzoo.engine import torch_cuda_graph

    return torch_cuda_graph


def test_off_cuda_or_disabled_the_step_is_called_directly(graphs, monkeypatch):
    import torch

    seen = []
    step = graphs.CapturedStep(lambda x: seen.append(x), "cpu")
    x = torch.ones(4, 2)
    step(x)
    assert step.mode == graphs.DIRECT and "CUDA device" in step.reason and seen[0] is x
    monkeypatch.setenv(graphs.ENV, "0")
    assert graphs.disabled_reason("cuda") == "KZOO_CUDA_GRAPHS=0"
    monkeypatch.setenv(graphs.ENV, "1")
    assert graphs.disabled_reason("cuda") is None and graphs.default_mode("cuda") == graphs.GRAPH
    assert graphs.CapturedStep(None, "cuda", reason="it cannot").mode == graphs.DIRECT  # no CUDA needed to say so


def _stand_in_capture(log):
    """A CUDA graph's protocol on a CPU: capturing runs nothing, each replay runs the recorded step."""

    def capture(fn, static):
        log.append("capture")
        return (lambda: log.append(fn(*static))), "static outputs"

    return capture


def test_every_batch_is_trained_once_around_warm_up_and_capture(graphs, monkeypatch):
    import torch

    log = []
    monkeypatch.setattr(graphs, "_capture", _stand_in_capture(log))
    total = torch.zeros(())
    inputs = []

    def step(x, y):
        inputs.append(x)
        total.add_((x.sum(1) * y).sum())
        return "ran"

    captured = graphs.CapturedStep(step, "cpu", mode=graphs.GRAPH, warmup=2)
    batches = [(torch.rand(4, 3), torch.rand(4)) for _ in range(6)] + [(torch.rand(2, 3), torch.rand(2))]
    results = [captured(*b) for b in batches]
    expected = sum(float((x.sum(1) * y).sum()) for x, y in batches)
    assert float(total) == pytest.approx(expected, rel=1e-6)
    assert log == ["capture", "ran", "ran", "ran", "ran"]  # batches 3-6 replayed, none twice
    assert results[:2] == ["ran", "ran"] and results[2:6] == ["static outputs"] * 4 and results[6] == "ran"
    static = captured.static[0]
    assert all(x is static for x in inputs[:6]) and inputs[6] is batches[6][0]  # copy-in; partial batch as given
    assert torch.equal(static, batches[5][0])  # the last full batch's values are in the buffer
    assert captured.mode == graphs.GRAPH and captured.calls == 6


def test_a_capture_that_fails_runs_eagerly_and_says_why(graphs, monkeypatch, caplog):
    import torch

    def failing(fn, static):
        raise RuntimeError("operation not permitted when stream is capturing\nmore")

    monkeypatch.setattr(graphs, "_capture", failing)
    total = torch.zeros(())
    captured = graphs.CapturedStep(lambda x: total.add_(x.sum()), "cpu", mode=graphs.GRAPH, warmup=1)
    batches = [torch.rand(5) for _ in range(4)]
    with caplog.at_level("WARNING", logger="kzoo.engine"):
        for b in batches:
            captured(b)
    assert float(total) == pytest.approx(float(sum(b.sum() for b in batches)), rel=1e-6)
    assert captured.mode == graphs.DIRECT
    assert captured.reason == "capture failed: RuntimeError: operation not permitted when stream is capturing"
    assert len([r for r in caplog.records if "runs eagerly" in r.getMessage()]) == 1


def _classifier():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    logits = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", dtype="float32", name="predictions")(logits))


def _train(loop, model, lr, batch_size, epochs=2, optimizer=keras.optimizers.Adam, **options):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)).astype("float32") * 2, rng.integers(0, 3, 40)
    xv, yv = rng.normal(size=(20, 6)).astype("float32"), rng.integers(0, 3, 20)
    model.compile(optimizer=optimizer(lr, **options), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return loop.run(model, x, y, validation_data=(xv, yv), epochs=epochs, initial_epoch=0, batch_size=batch_size,
                    callbacks=[]).history


@pytest.mark.parametrize("schedule,mode", [(False, "buffers"), (True, "buffers"), (True, "graph")])
def test_the_engine_over_static_buffers_trains_as_the_eager_engine(graphs, monkeypatch, schedule, mode):
    """What the graph replays (static buffers, device-side lr / iterations / sums, the partial batch eager)
    gives the eager engine's weights and logs bit for bit, with a constant learning rate and a schedule; also
    through warm-up, capture and replays of the stand-in graph (``mode="graph"``)."""
    from kzoo.engine.loops import seed_everything
    from kzoo.engine.torch_loop import FastTorchLoop

    def lr():
        return keras.optimizers.schedules.CosineDecay(0.05, 6) if schedule else 0.02

    seed_everything(0)
    eager, buffered = _classifier(), _classifier()
    buffered.set_weights(eager.get_weights())
    eager_history = _train(FastTorchLoop(), eager, lr(), batch_size=16, epochs=3)  # 16, 16, 8 per epoch
    log = []
    monkeypatch.setattr(graphs, "_capture", _stand_in_capture(log))
    monkeypatch.setattr(graphs, "default_mode", lambda device: mode)
    loop = FastTorchLoop()
    buffered_history = _train(loop, buffered, lr(), batch_size=16, epochs=3)
    assert loop.captured.mode == mode and loop.captured.calls == 6  # 2 full batches x 3 epochs
    if mode == graphs.GRAPH:  # training: 3 warm-up steps, captured at the 4th; validation: 3 calls, all warm-up
        assert log.count("capture") == 1 and len(log) == 1 + 3
    for a, b in zip(eager.get_weights(), buffered.get_weights()):  # incl. batch norm statistics
        np.testing.assert_array_equal(a, b)
    assert buffered_history == eager_history
    assert int(buffered.optimizer.iterations.numpy()) == int(eager.optimizer.iterations.numpy()) == 9


def test_the_engine_over_static_buffers_trains_as_fit(graphs, monkeypatch):
    from kzoo.engine.loops import FitLoop, seed_everything
    from kzoo.engine.torch_loop import FastTorchLoop

    seed_everything(0)
    fitted, buffered = _classifier(), _classifier()
    buffered.set_weights(fitted.get_weights())
    rate = keras.optimizers.schedules.CosineDecay(0.05, 4)
    fit_history = _train(FitLoop(), fitted, rate, batch_size=40, epochs=4)  # one full batch: no shuffle to match
    monkeypatch.setattr(graphs, "default_mode", lambda device: graphs.BUFFERS)
    buffered_history = _train(FastTorchLoop(), buffered, keras.optimizers.schedules.CosineDecay(0.05, 4),
                              batch_size=40, epochs=4)
    for a, b in zip(fitted.get_weights(), buffered.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    for key in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(buffered_history[key], fit_history[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["cosine", "step"])
def test_the_learning_rate_table_is_the_schedule_and_adam_stays_keras_adam(kind):
    """The table a capturable Adam reads its learning rate from equals the schedule's own values (vectorised,
    or one step at a time for PiecewiseConstantDecay), from a resumed ``iterations``; the updates stay Keras's."""
    import torch

    from kzoo.engine.torch_optim import FusedAdam, KerasApply

    def make():
        if kind == "cosine":
            return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.01, 12))
        return keras.optimizers.Adam(keras.optimizers.schedules.PiecewiseConstantDecay([6, 9], [0.01, 0.003, 0.001]))

    def small():
        inputs = keras.Input((4,))
        return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(5)(inputs)))

    model_a, model_b = small(), small()
    model_b.set_weights(model_a.get_weights())
    keras_opt, fused_opt = make(), make()
    keras_step = KerasApply(keras_opt, model_a.trainable_variables)
    fused_step = FusedAdam(fused_opt, model_b.trainable_variables)
    keras_opt.build(model_a.trainable_variables)
    keras_opt.iterations.assign(4)
    fused_opt.iterations.assign(4)  # a resumed run
    assert fused_step.plan(8) is None
    first, table = fused_step.lr_table
    expected = [float(keras.ops.convert_to_numpy(fused_opt._learning_rate(step))) for step in range(4, 12)]
    assert first == 4 and table.tolist() == pytest.approx(expected, rel=1e-7, abs=0)
    generator = torch.Generator().manual_seed(0)
    for _ in range(8):
        grads = [torch.randn(tuple(v.shape), generator=generator) for v in model_a.trainable_variables]
        with torch.no_grad():
            keras_step.apply([g.clone() for g in grads])
            fused_step.apply([g.clone() for g in grads])
    for wa, wb in zip(model_a.get_weights(), model_b.get_weights()):
        np.testing.assert_allclose(wb, wa, rtol=1e-5, atol=1e-6)  # Keras's alpha is float32, ours float64
    assert int(fused_opt.iterations.numpy()) == int(keras_opt.iterations.numpy()) == 12


_SGD_CASES = {
    "plain": dict(momentum=0.0),
    "momentum": dict(momentum=0.9),
    "nesterov+decay": dict(momentum=0.9, nesterov=True, weight_decay=5e-3),
    "decay+ema+clip": dict(momentum=0.8, weight_decay=1e-2, use_ema=True, ema_momentum=0.9, clipnorm=0.5),
}


def _small():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(5, name="hidden")(inputs)))


def _fused_against_keras(make, fused_class, steps=10):
    """``steps`` updates of ``fused_class`` and of Keras's own ``apply`` (same start, same gradients, from a
    resumed ``iterations``, the schedule tabulated as on CUDA); returns both optimizers and both models."""
    import torch

    from kzoo.engine.torch_optim import KerasApply, optimizer_step

    model_a, model_b = _small(), _small()
    model_b.set_weights(model_a.get_weights())
    keras_opt, fused_opt = make(), make()
    keras_step = KerasApply(keras_opt, model_a.trainable_variables)
    fused_step = optimizer_step(fused_opt, model_b.trainable_variables)
    assert type(fused_step) is fused_class
    keras_opt.build(model_a.trainable_variables)
    keras_opt.iterations.assign(2)
    fused_opt.iterations.assign(2)
    assert fused_step.plan(steps) is None
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        grads = [torch.randn(tuple(v.shape), generator=generator) for v in model_a.trainable_variables]
        with torch.no_grad():
            keras_step.apply([g.clone() for g in grads])
            fused_step.apply([g.clone() for g in grads])
    assert int(fused_opt.iterations.numpy()) == int(keras_opt.iterations.numpy()) == 2 + steps
    return keras_opt, fused_opt, model_a, model_b


@pytest.mark.parametrize("case", list(_SGD_CASES))
@pytest.mark.parametrize("schedule", [False, True])
def test_fused_sgd_is_keras_sgd(case, schedule):
    """The capturable SGD (lr on the device, iterations incremented there) updates weights, momenta and the
    weights' moving average as Keras's ``SGD.apply`` does: momentum, Nesterov, decoupled weight decay (Keras
    decays ``p *= 1 - lr * wd`` before the update), clipnorm, EMA, a schedule."""
    from kzoo.engine.torch_optim import FusedSGD

    def make():
        lr = keras.optimizers.schedules.CosineDecay(0.05, 14) if schedule else 0.05
        return keras.optimizers.SGD(lr, **_SGD_CASES[case])

    keras_opt, fused_opt, model_a, model_b = _fused_against_keras(make, FusedSGD)
    for wa, wb in zip(model_a.get_weights(), model_b.get_weights()):
        np.testing.assert_allclose(wb, wa, rtol=0, atol=1e-6)
    for va, vb in zip(keras_opt.variables, fused_opt.variables):  # momenta and moving averages
        np.testing.assert_allclose(keras.ops.convert_to_numpy(vb), keras.ops.convert_to_numpy(va), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["adamw", "adam+decay+ema"])
def test_fused_adamw_is_keras_adamw(kind):
    """AdamW (and Adam with ``weight_decay`` or an EMA of the weights) run the fused Adam kernel, with Keras's
    decoupled weight decay and EMA around it."""
    from kzoo.engine.torch_optim import FusedAdam

    def make():
        rate = keras.optimizers.schedules.CosineDecay(0.01, 14)
        if kind == "adamw":
            return keras.optimizers.AdamW(rate, weight_decay=0.05)
        return keras.optimizers.Adam(rate, weight_decay=0.05, use_ema=True, ema_momentum=0.9)

    keras_opt, fused_opt, model_a, model_b = _fused_against_keras(make, FusedAdam)
    for va, vb in zip(keras_opt.variables, fused_opt.variables):  # Keras's alpha is float32, ours float64
        np.testing.assert_allclose(keras.ops.convert_to_numpy(vb), keras.ops.convert_to_numpy(va), rtol=1e-5,
                                   atol=1e-6)


def test_the_engine_with_fused_sgd_over_static_buffers_trains_as_fit(graphs, monkeypatch):
    """Nesterov SGD with weight decay and a schedule: the engine's capturable step (static buffers, as the graph
    replays it) gives ``fit``'s weights and logs; it is not sent to Keras's ``apply`` any more."""
    from kzoo.engine.loops import FitLoop, seed_everything
    from kzoo.engine.torch_loop import FastTorchLoop
    from kzoo.engine.torch_optim import FusedSGD

    options = dict(optimizer=keras.optimizers.SGD, momentum=0.9, nesterov=True, weight_decay=1e-2)
    seed_everything(0)
    fitted, buffered = _classifier(), _classifier()
    buffered.set_weights(fitted.get_weights())
    fit_history = _train(FitLoop(), fitted, keras.optimizers.schedules.CosineDecay(0.1, 4), batch_size=40,
                         epochs=4, **options)
    monkeypatch.setattr(graphs, "default_mode", lambda device: graphs.BUFFERS)
    loop = FastTorchLoop()
    buffered_history = _train(loop, buffered, keras.optimizers.schedules.CosineDecay(0.1, 4), batch_size=40,
                              epochs=4, **options)
    assert loop.captured.mode == graphs.BUFFERS and loop.captured.reason is None
    assert isinstance(loop.captured_optimizer, FusedSGD)
    for a, b in zip(fitted.get_weights(), buffered.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    for key in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(buffered_history[key], fit_history[key], rtol=1e-5, atol=1e-6)


def test_what_cannot_be_captured_says_why(graphs, monkeypatch):
    from kzoo.engine.torch_graph import compile_graph
    from kzoo.engine.torch_loop import FastTorchLoop
    from kzoo.engine.torch_optim import optimizer_step

    monkeypatch.setattr(graphs, "default_mode", lambda device: graphs.BUFFERS)
    reason = FastTorchLoop._capture_reason
    inputs = keras.Input((6,))
    noisy = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GaussianNoise(0.1, name="noise")(inputs)))
    assert reason("cpu", compile_graph(noisy)) == "layers run as Keras layers: noise (GaussianNoise)"
    plain = _classifier()
    plain.compile(optimizer=keras.optimizers.RMSprop(0.1), loss="sparse_categorical_crossentropy")
    graph = compile_graph(plain)
    assert "RMSprop optimizer" in reason("cpu", graph, optimizer_step(plain.optimizer, plain.trainable_variables))
    assert reason("cpu", graph, replicas=2) == "data-parallel steps (DDP) are not captured"
    assert reason("cpu", graph) is None
    monkeypatch.setattr(graphs, "default_mode", lambda device: graphs.DIRECT)
    assert reason("cpu", compile_graph(noisy)) is None  # nothing is captured here anyway: no message


def test_inference_forward_is_recaptured_when_the_weights_change(graphs, monkeypatch):
    import torch

    from kzoo.engine.forward import inference_forward

    log = []

    def capture(fn, static):  # a graph's static output, rewritten by every replay
        log.append("capture")
        out = fn(*static).clone()
        return (lambda: out.copy_(fn(*static))), out

    monkeypatch.setattr(graphs, "_capture", capture)
    monkeypatch.setattr(graphs, "default_mode", lambda device: graphs.GRAPH)
    model = _classifier()
    forward = inference_forward(model)
    x = np.random.default_rng(0).normal(size=(8, 6)).astype("float32")
    for _ in range(4):
        forward(x)  # 2 warm-up calls, the capture, a replay
    forward(x[:3])  # another shape: its own warm-up
    assert log.count("capture") == 1
    model.get_layer("hidden").kernel.assign(model.get_layer("hidden").kernel * 2.0)
    for _ in range(3):
        forward(x)
    assert log.count("capture") == 2  # the weights changed: warmed up and captured again
    with torch.no_grad():
        expected = keras.ops.convert_to_numpy(model(x, training=False))
    assert forward.path == "torch graph"
    np.testing.assert_allclose(forward(x), expected, rtol=1e-5, atol=1e-6)  # a replay, with the new weights


@pytest.mark.slow
def test_the_gpu_check_script_runs_on_a_cpu(tmp_path):
    """``benchmarks/gpu_engine_check.py`` (run on a GPU by hand) keeps working: its CPU smoke run, one model."""
    import json
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    command = [sys.executable, os.path.join(root, "benchmarks", "gpu_engine_check.py"), "--device", "cpu",
               "--steps", "5", "--models", "lenet5", "--batch-size", "16", "--warmup", "2", "--rounds", "2",
               "--no-eager", "--budget", "240"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OUT=str(tmp_path), KERAS_BACKEND="torch"))
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in (tmp_path / "gpu-engine.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records] == ["env", "check", "throughput"], records
    check, speed = records[1], records[2]
    assert check["ok"] and check["weights_max_abs_diff"] == 0.0 and check["step_mode"] == "buffers", check
    assert check["iterations"] == [6, 6]  # 5 full batches and a partial one
    assert speed["kzoo_samples_per_s"] > 0 and speed["native_samples_per_s"] > 0 and speed["step_mode"] == "buffers"
