"""Torch's fused LSTM/GRU kernels give Keras's own results (outputs and gradients) on the CPU."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":
    pytest.skip("torch backend only", allow_module_level=True)

import torch  # noqa: E402

from kzoo.engine import torch_kernels  # noqa: E402


@pytest.fixture
def both_paths():
    yield
    torch_kernels.install()


@pytest.mark.parametrize("cls", [keras.layers.LSTM, keras.layers.GRU])
@pytest.mark.parametrize("return_sequences,go_backwards", [(False, False), (True, False), (False, True)])
def test_native_kernels_match_keras(cls, return_sequences, go_backwards, both_paths):
    layer = cls(12, return_sequences=return_sequences, go_backwards=go_backwards)
    x = torch.tensor(np.random.default_rng(0).random((3, 7, 5), dtype=np.float32))
    results = {}
    for path in ("keras", "native"):
        (torch_kernels.install if path == "native" else torch_kernels.uninstall)()
        for weight in layer.trainable_weights:
            weight.value.grad = None
        out = layer(x)
        out.square().sum().backward()
        results[path] = (out.detach().numpy(), [w.value.grad.numpy().copy() for w in layer.trainable_weights])
    np.testing.assert_allclose(results["native"][0], results["keras"][0], rtol=1e-5, atol=1e-6)
    for native, reference in zip(results["native"][1], results["keras"][1]):
        np.testing.assert_allclose(native, reference, rtol=1e-4, atol=1e-5)


def test_native_kernels_are_used(monkeypatch):
    import importlib

    keras_rnn = importlib.import_module("keras.src.backend.torch.rnn")
    calls = []
    original = keras_rnn._cudnn_lstm
    monkeypatch.setattr(keras_rnn, "_cudnn_lstm", lambda *a, **k: calls.append(1) or original(*a, **k))
    torch_kernels.install()
    keras.layers.LSTM(4)(np.zeros((2, 3, 2), "float32"))
    assert calls, "the fused kernel was not used"


def test_masked_sequences_keep_the_keras_path():
    torch_kernels.install()
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 4, mask_zero=True)(inputs)
    model = keras.Model(inputs, keras.layers.LSTM(3)(x))
    out = model(np.array([[1, 2, 0, 0], [3, 0, 0, 0]], "int32"))
    assert tuple(out.shape) == (2, 3)
