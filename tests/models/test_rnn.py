"""The recurrent family: every variant, stacking, bidirectionality and the language-model head."""

import keras
import numpy as np
import pytest

import kzoo
from kzoo.errors import OptionError
from kzoo.testing import trainable_count

VARIANTS = ["rnn", "lstm", "gru", "birnn", "bilstm", "bigru"]
RECURRENT = (keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU, keras.layers.Bidirectional)


def recurrent_layers(model):
    return [layer for layer in model.layers if isinstance(layer, RECURRENT)]



@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("input_shape", [(28, 28), (28, 28, 1)], ids=["steps_features", "image"])
def test_variant_builds_and_classifies(name, input_shape):
    model = kzoo.create_model(name, input_shape=input_shape, units=16)
    x = np.random.default_rng(0).random((2, *input_shape)).astype("float32")
    probabilities = model.predict(x, verbose=0)
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert model.get_layer("predictions").dtype_policy.compute_dtype == "float32"


def _recurrent_params(cell, inputs, units):
    """Weights of one recurrent layer: kernel, recurrent kernel and bias per gate (Keras's GRU has two biases)."""
    if cell == "rnn":
        return units * (inputs + units) + units
    if cell == "lstm":
        return 4 * (units * (inputs + units) + units)
    return 3 * (units * (inputs + units) + 2 * units)  # gru, reset_after=True


@pytest.mark.parametrize("name", VARIANTS)
def test_params_match_the_architecture(name):
    """Canonical: 28 steps of 28 features, 128 units, 10 classes, batch-normalised inputs (gamma and beta)."""
    directions = 2 if name.startswith("bi") else 1
    cell = name.removeprefix("bi")
    expected = 2 * 28 + directions * _recurrent_params(cell, 28, 128) + (directions * 128 * 10 + 10)
    assert trainable_count(kzoo.create_model(name)) == expected == kzoo.model_info(name)["params"]


def test_num_layers_stacks_recurrent_layers():
    model = kzoo.create_model("gru", units=8, num_layers=2, dropout=0.2)
    stack = recurrent_layers(model)
    assert [layer.name for layer in stack] == ["gru1", "gru2"]
    assert stack[0].return_sequences and not stack[1].return_sequences
    assert model.get_layer("dropout1").rate == pytest.approx(0.2)
    with pytest.raises(OptionError, match="num_layers=0"):
        kzoo.create_model("gru", num_layers=0)


@pytest.mark.parametrize("uni, bi", [("rnn", "birnn"), ("lstm", "bilstm"), ("gru", "bigru")])
def test_bidirectional_doubles_the_features(uni, bi):
    one_way = recurrent_layers(kzoo.create_model(uni, units=8))[-1]
    both_ways = recurrent_layers(kzoo.create_model(bi, units=8))[-1]
    assert isinstance(both_ways, keras.layers.Bidirectional)
    assert one_way.output.shape[-1] == 8 and both_ways.output.shape[-1] == 16
    assert isinstance(recurrent_layers(kzoo.create_model(uni, units=8, bidirectional=True))[-1],
                      keras.layers.Bidirectional)


def test_cudnn_compatible_defaults():
    for name, layer_class in (("lstm", keras.layers.LSTM), ("gru", keras.layers.GRU)):
        layer = recurrent_layers(kzoo.create_model(name, units=8))[0]
        assert isinstance(layer, layer_class)
        assert layer.cell.activation is keras.activations.tanh
        assert layer.cell.recurrent_activation is keras.activations.sigmoid
        assert layer.cell.recurrent_dropout == 0 and layer.cell.use_bias and not layer.unroll
    assert recurrent_layers(kzoo.create_model("gru", units=8))[0].cell.reset_after


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_language_model_head(name):
    model = kzoo.create_model(name, input_shape=(35,), units=16, num_layers=2, head="lm", vocab_size=30)
    tokens = np.random.default_rng(1).integers(0, 30, size=(3, 35)).astype("int32")
    probabilities = model.predict(tokens, verbose=0)
    assert probabilities.shape == (3, 35, 30)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    assert all(layer.return_sequences for layer in recurrent_layers(model))


def test_language_model_defaults_and_checks():
    model = kzoo.create_model("lstm", head="lm", units=8)
    assert model.input_shape == (None, 35) and model.output_shape == (None, 35, 28)
    assert model.get_layer("one_hot").trainable_weights == []
    for name in ("birnn", "bilstm", "bigru"):
        with pytest.raises(OptionError, match="sees the future"):
            kzoo.create_model(name, head="lm")
    with pytest.raises(OptionError, match="sees the future"):
        kzoo.create_model("gru", head="lm", bidirectional=True)
    with pytest.raises(OptionError, match="num_classes=10"):
        kzoo.create_model("lstm", head="lm", num_classes=10)
    with pytest.raises(OptionError, match=r"input_shape=\(28, 28\)"):
        kzoo.create_model("lstm", head="lm", input_shape=(28, 28))
    with pytest.raises(OptionError, match="head='seq2seq'"):
        kzoo.create_model("lstm", head="seq2seq")


@pytest.mark.parametrize("name", ["lstm", "bigru"])
def test_token_input_classifies_text_and_skips_padding(name):
    """An input_shape (steps,) reads token ids through a masking embedding: more padding, the same class scores."""
    keras.utils.set_random_seed(0)
    model = kzoo.create_model(name, input_shape=(6,), num_classes=2, vocab_size=12, embedding_dim=4, units=5)
    longer = kzoo.create_model(name, input_shape=(9,), num_classes=2, vocab_size=12, embedding_dim=4, units=5)
    longer.set_weights(model.get_weights())
    tokens = np.array([[4, 5, 6, 7, 0, 0], [9, 0, 0, 0, 0, 0]], dtype="int32")
    expected = keras.ops.convert_to_numpy(model(tokens))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(longer(np.pad(tokens, ((0, 0), (0, 3))))), expected,
                               rtol=1e-5, atol=1e-6)
    assert model.get_layer("embedding").mask_zero and "input_norm" not in [layer.name for layer in model.layers]
