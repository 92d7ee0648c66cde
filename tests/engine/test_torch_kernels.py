"""Torch's fused LSTM/GRU kernels: Keras's own results (outputs and gradients) on the CPU, for kzoo's models only."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":
    pytest.skip("torch backend only", allow_module_level=True)

import torch  # noqa: E402

import kzoo  # noqa: E402
from kzoo.engine import _keras_compat, torch_kernels  # noqa: E402
from kzoo.engine.kernels import accelerate  # noqa: E402
from kzoo.engine.loops import FitLoop  # noqa: E402


@pytest.fixture
def fused_calls(monkeypatch):
    """Counts the calls of the fused kernels (Keras's ``_cudnn_lstm`` / ``_cudnn_gru``, the masked path)."""
    keras_rnn = _keras_compat.torch_rnn_module()
    calls = []
    for module, name in ((keras_rnn, "_cudnn_lstm"), (keras_rnn, "_cudnn_gru"), (torch_kernels, "_masked_fused")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=original, **k: calls.append(1) or _f(*a, **k))
    return calls


def _pair(cls, **options):
    """Two layers with the same weights: one as Keras has it, one accelerated."""
    x = torch.tensor(np.random.default_rng(0).random((3, 7, 5), dtype=np.float32))
    plain, fused = cls(12, **options), cls(12, **options)
    plain.build(x.shape)
    fused.build(x.shape)
    fused.set_weights(plain.get_weights())
    assert torch_kernels.accelerate_layer(fused) and not torch_kernels.accelerate_layer(fused)  # idempotent
    return x, plain, fused


@pytest.mark.parametrize("cls", [keras.layers.LSTM, keras.layers.GRU])
@pytest.mark.parametrize("return_sequences,go_backwards", [(False, False), (True, False), (False, True)])
def test_fused_kernels_match_keras(cls, return_sequences, go_backwards, fused_calls):
    x, plain, fused = _pair(cls, return_sequences=return_sequences, go_backwards=go_backwards)
    results = {}
    for name, layer in (("keras", plain), ("fused", fused)):
        calls = len(fused_calls)
        out = layer(x)
        out.square().sum().backward()
        results[name] = (out.detach().numpy(), [w.value.grad.numpy().copy() for w in layer.trainable_weights])
        assert (len(fused_calls) > calls) == (name == "fused")  # only the accelerated instance takes the kernel
    np.testing.assert_allclose(results["fused"][0], results["keras"][0], rtol=1e-5, atol=1e-6)
    for fused_grad, keras_grad in zip(results["fused"][1], results["keras"][1]):
        np.testing.assert_allclose(fused_grad, keras_grad, rtol=1e-4, atol=1e-5)


def test_dropout_inside_the_layer_keeps_the_keras_path_in_training(fused_calls):
    x, _, fused = _pair(keras.layers.LSTM, dropout=0.5)
    fused(x, training=True)
    assert not fused_calls
    fused(x, training=False)
    assert fused_calls


def _masked_pair(cls, tokens, **options):
    """Two embedding + RNN models with the same weights and ``mask_zero``: Keras's and the accelerated one."""
    def build():
        inputs = keras.Input((tokens.shape[1],), dtype="int32")
        x = keras.layers.Embedding(10, 5, mask_zero=True)(inputs)
        return keras.Model(inputs, cls(6, **options)(x))

    plain, fused = build(), build()
    fused.set_weights(plain.get_weights())
    assert accelerate(fused) == 1
    return plain, fused


_RIGHT_PADDED = np.array([[1, 2, 3, 0, 0], [4, 0, 0, 0, 0], [5, 6, 7, 8, 9]], "int32")


@pytest.mark.parametrize("cls", [keras.layers.LSTM, keras.layers.GRU])
@pytest.mark.parametrize("options", [{"return_sequences": True, "return_state": True},
                                     {"return_sequences": True, "zero_output_for_mask": True}, {}])
def test_right_padded_masks_take_the_fused_kernel_with_keras_results(cls, options, fused_calls):
    """Packed sequences give Keras's masked-loop outputs, final states and gradients."""
    results = {}
    for name, model in zip(("keras", "fused"), _masked_pair(cls, _RIGHT_PADDED, **options)):
        calls = len(fused_calls)
        outputs = keras.tree.flatten(model(_RIGHT_PADDED))
        sum(o.square().sum() for o in outputs).backward()
        results[name] = ([o.detach().numpy() for o in outputs],
                         [w.value.grad.numpy().copy() for w in model.trainable_weights])
        assert (len(fused_calls) > calls) == (name == "fused")
    for fused, plain in zip(results["fused"][0] + results["fused"][1], results["keras"][0] + results["keras"][1]):
        np.testing.assert_allclose(fused, plain, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("tokens", [np.array([[0, 0, 1, 2], [3, 4, 5, 6]], "int32"),  # left padding
                                    np.array([[1, 0, 2, 0], [3, 4, 5, 6]], "int32"),  # a hole
                                    np.array([[0, 0, 0, 0], [3, 4, 5, 6]], "int32")])  # an empty sequence
def test_other_masks_keep_the_keras_path(tokens, fused_calls):
    plain, fused = _masked_pair(keras.layers.GRU, tokens, return_sequences=True)
    np.testing.assert_allclose(fused(tokens).detach().numpy(), plain(tokens).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert not fused_calls


def test_other_keras_models_are_untouched_while_kzoo_trains_with_the_kernels(tmp_path, fused_calls):
    """Building, training and loading kzoo models changes nothing in Keras itself or in other models."""
    keras_rnn = _keras_compat.torch_rnn_module()
    keras_backend_lstm = keras.src.backend.lstm

    def plain_model():
        inputs = keras.Input((5, 3))
        return keras.Model(inputs, keras.layers.LSTM(4, name="plain_lstm")(inputs))

    before = plain_model()
    built = kzoo.create_model("lstm", input_shape=(28, 28), num_classes=10)
    assert all(not torch_kernels.is_accelerated(layer) for layer in built._flatten_layers())  # built: Keras's own
    inputs = keras.Input((6, 3))
    net = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.LSTM(4, name="lstm")(inputs)))
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = np.random.default_rng(0).random((8, 6, 3), dtype=np.float32), np.arange(8) % 2
    FitLoop().run(net, x, y, validation_data=None, epochs=1, initial_epoch=0, batch_size=8, callbacks=[])
    assert fused_calls and torch_kernels.is_accelerated(net.get_layer("lstm"))  # kzoo's training used the kernel
    net.save(tmp_path / "net.keras")
    loaded = kzoo.load_model(str(tmp_path / "net.keras"))
    assert torch_kernels.is_accelerated(loaded.get_layer("lstm"))
    after = plain_model()
    for model in (before, after):
        layer = model.get_layer("plain_lstm")
        assert "inner_loop" not in vars(layer) and type(layer).inner_loop is keras.layers.LSTM.inner_loop
    assert keras.src.backend.lstm is keras_backend_lstm is keras_rnn.lstm  # Keras's dispatch is Keras's own
    calls = len(fused_calls)
    after(np.zeros((2, 5, 3), "float32"))
    assert len(fused_calls) == calls
