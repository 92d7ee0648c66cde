"""The translation task's data preparation: length filter, vocabularies, a disjoint held-out split."""

import types
from collections import Counter

import numpy as np

from kzoo.data import Dataset
from kzoo.tasks.translation import TranslationTask


def _config(seq_len):
    return types.SimpleNamespace(vocab="words", seq_len=seq_len, limit=0, val_split=0.0, seed=0)


def _dataset():
    short = [("go .", "va !"), ("run .", "cours !"), ("go now .", "va maintenant !")] * 3
    long = [("the zebra runs away very fast .", "le zèbre court très vite !")] * 5
    x_train, y_train = zip(*(short + long))
    return Dataset("pairs", x_train=np.array(x_train, dtype=object), y_train=np.array(y_train, dtype=object),
                   x_test=np.array(["go .", "the zebra runs away very fast ."], dtype=object),
                   y_test=np.array(["va !", "le zèbre court très vite !"], dtype=object), task="translation")


def test_vocabularies_hold_the_frequent_tokens_of_the_pairs_that_fit():
    task = TranslationTask()
    prepared = task.prepare(_dataset(), _config(seq_len=4))  # at most 3 tokens a side
    kept = [("go .", "va !"), ("run .", "cours !"), ("go now .", "va maintenant !")] * 3
    for vocab, side in ((task.source_vocab, 0), (task.target_vocab, 1)):
        counts = Counter(token for pair in kept for token in pair[side].split())
        assert set(vocab.tokens[4:]) == {t for t, c in counts.items() if c >= task.min_count}
    assert "zebra" not in task.source_vocab.tokens  # seen 5 times, but only in pairs too long to train on
    assert prepared.extra["pairs_too_long"] == {"train": 5, "test": 1}
    assert list(prepared.x_test) == ["go ."] and prepared.x_train[0].shape == (9, 4)


def test_a_longer_seq_len_keeps_the_long_pairs_and_their_tokens():
    task = TranslationTask()
    prepared = task.prepare(_dataset(), _config(seq_len=8))
    assert "zebra" in task.source_vocab.tokens and "zèbre" in task.target_vocab.tokens
    assert prepared.extra["pairs_too_long"] == {"train": 0, "test": 0}
