"""Greedy and beam-search decoding of the encoder-decoder models (translation, captioning).

A decoder is driven by ``next_log_probs(prefixes) -> (rows, vocab)``: the log-probabilities of the next token
after each prefix (int ``(rows, t)``, starting with ``<bos>``). :func:`model_stepper` makes one from a trained
teacher-forcing model: the prefix, zero-padded to the model's target length, is fed as its decoder input and
the step ``t - 1`` output is read (the decoder is causal and padding is masked, so later positions do not
matter). That re-runs the network once per emitted token, which costs little for sentences of a few tokens and
uses the trained graph exactly as it was saved.

Beam search (``beam > 1``) keeps the ``beam`` most probable prefixes of every example; a finished hypothesis
(it emitted ``<eos>``) keeps its score. The best hypothesis is chosen by ``log p / length ** alpha``
(length counted with ``<eos>``; d2l section 10.8, ``alpha = 0.75``). ``beam = 1`` is greedy decoding.
``banned`` tokens are never emitted (translation bars ``<unk>``, which can never match a reference word: the
decoder emits its best real word instead, as fairseq's ``--unkpen`` and Marian's ``--allow-unk false`` do).
"""

import numpy as np

from kzoo.errors import OptionError
from kzoo.tasks.tokens import BOS, EOS, PAD

LENGTH_ALPHA = 0.75


def beam_search(next_log_probs, batch_size, *, beam=1, max_len=16, alpha=LENGTH_ALPHA, banned=()):
    """Decode ``batch_size`` examples; returns one list of token ids (no ``<bos>``/``<eos>``) per example."""
    if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
        raise OptionError(f"beam must be an integer >= 1. Received: beam={beam!r}.")
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise OptionError(f"max_len must be an integer >= 1. Received: max_len={max_len!r}.")
    banned = sorted({int(t) for t in banned})
    if set(banned) & {PAD, EOS}:
        raise OptionError(f"Padding and <eos> cannot be banned. Received: banned={banned!r}.")
    seqs = np.full((batch_size, 1, 1), BOS, dtype="int32")
    scores = np.zeros((batch_size, 1))
    lengths = np.zeros((batch_size, 1), dtype="int64")
    done = np.zeros((batch_size, 1), dtype=bool)
    for _ in range(max_len):
        width = seqs.shape[1]
        log_probs = np.asarray(next_log_probs(seqs.reshape(batch_size * width, -1)), dtype="float64")
        log_probs = log_probs.reshape(batch_size, width, -1)
        vocab = log_probs.shape[-1]
        log_probs[done] = -np.inf  # a finished hypothesis continues only with padding, at no cost
        log_probs[done, PAD] = 0.0
        log_probs[~done, PAD] = -np.inf  # an unfinished one never emits padding or <bos>
        log_probs[~done, BOS] = -np.inf
        for token in banned:
            log_probs[~done, token] = -np.inf
        candidates = (scores[..., None] + log_probs).reshape(batch_size, width * vocab)
        keep = min(beam, width * vocab)
        best = np.argsort(-candidates, axis=1, kind="stable")[:, :keep]
        parent, token = best // vocab, best % vocab
        rows = np.arange(batch_size)[:, None]
        was_done = done[rows, parent]
        seqs = np.concatenate([seqs[rows, parent], token[..., None].astype("int32")], axis=2)
        scores = candidates[rows, best]
        lengths = lengths[rows, parent] + (~was_done)
        done = was_done | (token == EOS)
        if done.all():
            break
    final = scores / np.maximum(lengths, 1) ** alpha
    choice = np.argmax(final, axis=1)
    return [[int(t) for t in seqs[i, choice[i], 1:] if t not in (PAD, EOS)] for i in range(batch_size)]


def model_stepper(model, context, *, batch_size=512):
    """``next_log_probs`` of a teacher-forcing model whose last input is the decoder input.

    Args:
        model: a Keras model with inputs ``[context..., decoder_in]`` and output ``(batch, steps, vocab)``.
        context: the arrays of the other inputs for each example (a list, one per input); hypotheses of one
            example are rows ``i * width .. (i + 1) * width - 1`` of the prefixes, as :func:`beam_search` lays
            them out.
    """
    import keras

    context = [np.asarray(c) for c in context]
    examples = len(context[0])
    steps = int(model.inputs[-1].shape[1])

    def next_log_probs(prefixes):
        rows, length = prefixes.shape
        width = rows // examples
        decoder_in = np.zeros((rows, steps), dtype="int32")
        decoder_in[:, :length] = prefixes
        repeated = [np.repeat(c, width, axis=0) for c in context]
        out = []
        for start in range(0, rows, batch_size):
            part = slice(start, start + batch_size)
            probs = model([*(c[part] for c in repeated), decoder_in[part]], training=False)
            out.append(np.asarray(keras.ops.convert_to_numpy(probs))[:, length - 1])
        return np.log(np.clip(np.concatenate(out), 1e-12, 1.0))

    return next_log_probs


def decode(model, context, *, beam=1, max_len=None, batch_size=512, chunk=1024, banned=()):
    """Token ids decoded for every example of ``context`` (``chunk`` examples at a time)."""
    context = [np.asarray(c) for c in context]
    steps = int(model.inputs[-1].shape[1])
    max_len = steps if max_len is None else min(max_len, steps)
    results = []
    for start in range(0, len(context[0]), chunk):
        part = [c[start:start + chunk] for c in context]
        results += beam_search(model_stepper(model, part, batch_size=batch_size), len(part[0]), beam=beam,
                               max_len=max_len, banned=banned)
    return results
