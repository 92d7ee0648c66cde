"""seq2seq and seq2seq_attention: padding is masked, attention is Luong's (checked in NumPy), options build."""

import keras
import numpy as np
import pytest

import kzoo
from kzoo.testing import trainable_count

SOURCE = np.array([[5, 6, 7, 3, 0, 0], [8, 3, 0, 0, 0, 0]], dtype="int32")
TARGET_IN = np.array([[2, 5, 6, 0], [2, 7, 0, 0]], dtype="int32")


def small(name, **options):
    keras.utils.set_random_seed(0)
    defaults = dict(input_shape=(6, 4), num_classes=10, units=8, embedding_dim=4, num_layers=1, dropout=0.0,
                    source_vocab=10)
    return kzoo.create_model(name, **{**defaults, **options})


def numpy_out(model, *arrays):
    return np.asarray(keras.ops.convert_to_numpy(model(list(arrays), training=False)))


@pytest.mark.parametrize("name,options", [("seq2seq", {}), ("seq2seq", {"cell": "lstm", "num_layers": 2}),
                                          ("seq2seq", {"bidirectional_encoder": True}),
                                          ("seq2seq_attention", {}), ("seq2seq_attention", {"attention": "additive"})])
def test_source_padding_changes_nothing(name, options):
    """The same sentence with more trailing padding translates the same: the encoder and attention skip padding."""
    model = small(name, **options)
    longer = small(name, input_shape=(9, 4), **options)
    longer.set_weights(model.get_weights())
    padded = np.pad(SOURCE, ((0, 0), (0, 3)))
    np.testing.assert_allclose(numpy_out(longer, padded, TARGET_IN), numpy_out(model, SOURCE, TARGET_IN),
                               rtol=1e-5, atol=1e-6)


def test_the_decoder_starts_from_the_encoder_state():
    model = small("seq2seq")
    other = SOURCE.copy()
    other[0, 0] = 9
    first, changed = numpy_out(model, SOURCE, TARGET_IN), numpy_out(model, other, TARGET_IN)
    assert not np.allclose(first[0, 0], changed[0, 0])  # step 0 already depends on the source
    np.testing.assert_allclose(first[1], changed[1], rtol=1e-6)


def test_luong_attention_matches_numpy():
    """softmax(h_t . W h_s) over real source tokens, context, tanh(W_c [c; h_t] + b): Luong et al. eq. 5-8."""
    model = small("seq2seq_attention")
    inputs = model.inputs
    decoded = keras.Model(inputs, model.get_layer("decoder_gru1").output)
    encoded = keras.Model(inputs, model.get_layer("encoder_gru1").output[0])
    hidden = keras.Model(inputs, model.get_layer("attentional_hidden").output)
    h, s = numpy_out(decoded, SOURCE, TARGET_IN), numpy_out(encoded, SOURCE, TARGET_IN)
    w = keras.ops.convert_to_numpy(model.get_layer("attention_key").kernel)
    wc, bc = (keras.ops.convert_to_numpy(v) for v in model.get_layer("attentional_hidden").weights)
    scores = np.einsum("btu,bsu->bts", h, s @ w)
    scores = np.where((SOURCE != 0)[:, None, :], scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    context = np.einsum("bts,bsu->btu", weights, s)
    expected = np.tanh(np.concatenate([context, h], -1) @ wc + bc)
    real = TARGET_IN != 0  # Keras zeroes the context of padded decoder steps, which no loss or decoding reads
    np.testing.assert_allclose(numpy_out(hidden, SOURCE, TARGET_IN)[real], expected[real], rtol=1e-4, atol=1e-5)


def test_widths_and_counts_of_the_variants():
    # bidirectional: the decoder is twice as wide (16 units) and starts from the joined states
    model = small("seq2seq", bidirectional_encoder=True)
    assert model.get_layer("decoder_gru1").units == 16
    gru = lambda i, u: 3 * (i * u + u * u + 2 * u)  # noqa: E731 (Keras GRU, reset_after=True)
    lstm = lambda i, u: 4 * (i * u + u * u + u)  # noqa: E731
    embeddings, head = 2 * 10 * 4, 16 * 10 + 10
    assert trainable_count(model) == embeddings + 2 * gru(4, 8) + gru(4, 16) + head
    model = small("seq2seq", cell="lstm", num_layers=2)
    assert trainable_count(model) == 2 * 10 * 4 + 2 * (lstm(4, 8) + lstm(8, 8)) + 8 * 10 + 10


def test_bad_options_are_refused():
    with pytest.raises(kzoo.KzooError, match="cell"):
        kzoo.create_model("seq2seq", cell="rnn")
    with pytest.raises(kzoo.KzooError, match="attention"):
        kzoo.create_model("seq2seq_attention", attention="dot")
    with pytest.raises((ValueError, kzoo.KzooError), match="source_steps, target_steps"):
        kzoo.create_model("seq2seq", input_shape=(6, 4, 1))
