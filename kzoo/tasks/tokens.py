"""Token vocabularies of the sequence tasks (translation, captioning, text classification): text <-> ids.

Two kinds (``--vocab``): ``words`` splits on spaces after :func:`tokenize_words` (lower case, punctuation as
tokens of its own), ``chars`` takes every character. Four ids are fixed: ``<pad>`` 0 (padding, masked by the
models), ``<unk>`` 1 (any token the training data did not hold often enough: never a crash), ``<bos>`` 2 and
``<eos>`` 3. The token list is stored in the run's ``config.yaml`` so a run decodes with exactly its own
vocabulary.
"""

import re
from collections import Counter

import numpy as np

from kzoo.errors import DataError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIAL = ("<pad>", "<unk>", "<bos>", "<eos>")
KINDS = ("words", "chars")
_WORDS = re.compile(r"[\w']+|[^\w\s]")
_HYPHEN = re.compile(r"(?<=[\w']) - (?=[\w'])")


def tokenize_words(text):
    """Lower-cased words and punctuation marks: ``"A wonderful, moving film."`` -> ``a wonderful , moving film .``."""
    return _WORDS.findall(text.lower())


def detokenize_words(tokens):
    """Text of word tokens: spaces between them, except that a hyphen joins the words it stood between again
    (``dis - moi`` -> ``dis-moi``, ``qu'est - ce`` -> ``qu'est-ce``), as d2l's preprocessed sentences write them."""
    return _HYPHEN.sub("-", " ".join(tokens))


class TokenVocab:
    """Tokens in id order (the four special tokens first) and the tokenizer kind that produced them."""

    def __init__(self, kind, tokens):
        if kind not in KINDS:
            raise DataError(f"vocab must be one of {', '.join(KINDS)}. Received: vocab={kind!r}.")
        if tuple(tokens[:4]) != SPECIAL:
            raise DataError(f"A token vocabulary starts with {', '.join(SPECIAL)}. Received: {list(tokens)[:4]!r}.")
        self.kind, self.tokens = kind, list(tokens)
        self._ids = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, kind, texts, *, min_count=1, max_size=None):
        """The tokens of ``texts`` seen at least ``min_count`` times, most frequent first (ties by token)."""
        counts = Counter(token for text in texts for token in cls.split(kind, text))
        ranked = sorted((t for t, c in counts.items() if c >= min_count and t not in SPECIAL),
                        key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(SPECIAL))]
        return cls(kind, [*SPECIAL, *ranked])

    @staticmethod
    def split(kind, text):
        if kind == "chars":
            return list(text)
        if kind == "words":
            return tokenize_words(text)
        raise DataError(f"vocab must be one of {', '.join(KINDS)}. Received: vocab={kind!r}.")

    def __len__(self):
        return len(self.tokens)

    def encode(self, text):
        """Token ids of ``text``; tokens outside the vocabulary become ``<unk>``."""
        return [self._ids.get(token, UNK) for token in self.split(self.kind, text)]

    def decode(self, ids):
        """Text of ``ids`` up to the first ``<eos>``; padding and ``<bos>`` are skipped."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.tokens[i])
        return "".join(out) if self.kind == "chars" else detokenize_words(out)


def pad(sequences, length, *, bos=False, eos=False):
    """int32 ``(N, length)``: each sequence (optionally behind ``<bos>`` / before ``<eos>``), cut, 0-padded."""
    out = np.zeros((len(sequences), length), dtype="int32")
    for row, ids in enumerate(sequences):
        ids = ([BOS] if bos else []) + list(ids) + ([EOS] if eos else [])
        ids = ids[:length]
        out[row, :len(ids)] = ids
    return out
