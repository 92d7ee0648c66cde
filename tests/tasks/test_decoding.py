"""Beam search against a plain NumPy beam search and an exhaustive search, on tiny models."""

import itertools

import numpy as np
import pytest

from kzoo.errors import OptionError
from kzoo.tasks.decoding import LENGTH_ALPHA, beam_search, decode
from kzoo.tasks.tokens import BOS, EOS, PAD, UNK

VOCAB = 7  # pad, unk, bos, eos and three words


def markov_model(seed):
    """A tiny NumPy "decoder": the next token's log-probabilities depend on the example and the last token."""
    rng = np.random.default_rng(seed)
    table = np.log(rng.dirichlet(np.full(VOCAB, 0.5), size=(3, VOCAB)))  # (examples, last token, next)

    def next_log_probs(prefixes):
        rows = len(prefixes)
        example = np.arange(rows) // (rows // 3)
        return table[example, prefixes[:, -1]]

    return table, next_log_probs


def allowed(log_probs, banned=()):
    """What the decoder may emit: never padding, <bos> or a banned token."""
    out = log_probs.copy()
    out[[PAD, BOS, *banned]] = -np.inf
    return out


def reference_beam(table, example, beam, max_len, alpha=LENGTH_ALPHA, banned=()):
    """Textbook beam search for one example, with Python lists (hypothesis = tokens, log p, finished)."""
    hypotheses = [([], 0.0, False)]
    for _ in range(max_len):
        candidates = []
        for tokens, score, finished in hypotheses:
            if finished:
                candidates.append((tokens, score, True))
                continue
            last = tokens[-1] if tokens else BOS
            log_probs = allowed(table[example, last], banned)
            for token in range(VOCAB):
                if np.isfinite(log_probs[token]):
                    candidates.append((tokens + [token], score + log_probs[token], token == EOS))
        candidates.sort(key=lambda h: -h[1])
        hypotheses = candidates[:beam]
        if all(h[2] for h in hypotheses):
            break
    best = max(hypotheses, key=lambda h: h[1] / len(h[0]) ** alpha)
    return [t for t in best[0] if t != EOS]


def exhaustive(table, example, max_len, alpha=LENGTH_ALPHA):
    """The best sequence of all sequences up to ``max_len`` tokens (ending at <eos> or at the limit)."""
    words = [t for t in range(VOCAB) if t not in (PAD, BOS)]
    best, best_score = None, -np.inf
    for length in range(1, max_len + 1):
        for tokens in itertools.product(words, repeat=length):
            if EOS in tokens[:-1] or (length < max_len and tokens[-1] != EOS):
                continue
            score, last = 0.0, BOS
            for token in tokens:
                score += table[example, last, token]
                last = token
            if score / length ** alpha > best_score:
                best, best_score = [t for t in tokens if t != EOS], score / length ** alpha
    return best


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("beam", [1, 2, 4])
def test_beam_search_matches_a_reference_implementation(seed, beam):
    table, next_log_probs = markov_model(seed)
    got = beam_search(next_log_probs, 3, beam=beam, max_len=6)
    assert got == [reference_beam(table, example, beam, 6) for example in range(3)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("beam", [1, 3])
def test_banned_tokens_are_never_emitted(seed, beam):
    """Barring <unk> (translation) equals the reference search over the other tokens, and changes the result."""
    table, next_log_probs = markov_model(seed)
    table[:, :, UNK] = np.log(0.6)  # <unk> is the likeliest token everywhere
    table -= np.log(np.exp(table).sum(-1, keepdims=True))
    got = beam_search(next_log_probs, 3, beam=beam, max_len=6, banned=(UNK,))
    assert got == [reference_beam(table, example, beam, 6, banned=(UNK,)) for example in range(3)]
    assert all(UNK not in tokens for tokens in got)
    assert any(UNK in tokens for tokens in beam_search(next_log_probs, 3, beam=beam, max_len=6))


def test_greedy_takes_the_most_likely_token_each_step():
    table, next_log_probs = markov_model(7)
    for example, tokens in enumerate(beam_search(next_log_probs, 3, beam=1, max_len=6)):
        last, expected = BOS, []
        for _ in range(6):
            token = int(np.argmax(allowed(table[example, last])))
            if token == EOS:
                break
            expected.append(token)
            last = token
        assert tokens == expected


@pytest.mark.parametrize("seed", range(3))
def test_a_wide_beam_finds_the_exhaustive_optimum(seed):
    table, next_log_probs = markov_model(seed)
    got = beam_search(next_log_probs, 3, beam=VOCAB ** 3, max_len=3)
    assert got == [exhaustive(table, example, 3) for example in range(3)]


def test_beam_and_length_are_checked():
    _, next_log_probs = markov_model(0)
    with pytest.raises(OptionError, match="beam must be"):
        beam_search(next_log_probs, 3, beam=0)
    with pytest.raises(OptionError, match="max_len must be"):
        beam_search(next_log_probs, 3, max_len=0)
    with pytest.raises(OptionError, match="cannot be banned"):
        beam_search(next_log_probs, 3, banned=(EOS,))


def test_decode_drives_a_keras_model_like_running_it_on_its_own_output():
    """Greedy decoding of a tiny seq2seq equals feeding the model its own argmax, one full forward per step."""
    import keras

    import kzoo

    keras.utils.set_random_seed(0)
    model = kzoo.create_model("seq2seq", input_shape=(5, 6), num_classes=9, units=8, embedding_dim=4,
                              num_layers=1, dropout=0.0, source_vocab=9)
    source = np.array([[4, 5, 6, EOS, 0], [7, EOS, 0, 0, 0]], dtype="int32")
    got = decode(model, [source], beam=1)
    for row, tokens in enumerate(got):
        target_in, out = np.zeros((1, 6), dtype="int32"), []
        target_in[0, 0] = BOS
        for step in range(6):
            probs = keras.ops.convert_to_numpy(model([source[row:row + 1], target_in]))[0, step].copy()
            probs[[PAD, BOS]] = 0
            token = int(np.argmax(probs))
            if token == EOS:
                break
            out.append(token)
            if step + 1 < 6:
                target_in[0, step + 1] = token
        assert tokens == out
