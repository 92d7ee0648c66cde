"""Character vocabularies of the language-model task: text -> token ids -> text.

Two kinds (``--vocab``):

* ``letters`` (the default, as in d2l's Time Machine chapters): the text is lowercased and every run of
  characters other than ``a-z`` becomes one space, so the vocabulary is ``<unk>``, space and the 26 letters
  (28 tokens, the rnn family's default ``vocab_size``). Any prefix can be encoded: it is normalised the same way.
* ``chars``: every distinct character of the training text is a token (case, digits, punctuation and line
  breaks kept), plus ``<unk>`` at id 0; a prefix with a character the text never contained is an error.

The vocabulary is stored in the run's ``config.yaml`` (``vocab_tokens``) so ``kzoo generate`` decodes with
exactly the tokens the model was trained on.
"""

import re

import numpy as np

from kzoo.errors import DataError

VOCABS = ("letters", "chars")
UNKNOWN = "<unk>"
_NON_LETTERS = re.compile(r"[^a-z]+")


class CharVocab:
    """A character vocabulary: ``encode`` text to int32 ids, ``decode`` ids back to text.

    Args:
        kind: ``"letters"`` or ``"chars"`` (see the module docstring).
        tokens: the tokens in id order; id 0 is always ``<unk>``.
    """

    def __init__(self, kind, tokens):
        if kind not in VOCABS:
            raise DataError(f"vocab must be one of {', '.join(VOCABS)}. Received: vocab={kind!r}.")
        if not tokens or tokens[0] != UNKNOWN:
            raise DataError(f"A vocabulary starts with {UNKNOWN!r}. Received: {list(tokens)[:5]!r}...")
        self.kind = kind
        self.tokens = list(tokens)
        self._ids = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, kind, text):
        """The vocabulary of ``text``: the fixed 28 tokens for ``letters``, the text's characters for ``chars``."""
        if kind == "letters":
            return cls(kind, [UNKNOWN, " ", *"abcdefghijklmnopqrstuvwxyz"])
        if kind not in VOCABS:
            raise DataError(f"vocab must be one of {', '.join(VOCABS)}. Received: vocab={kind!r}.")
        return cls(kind, [UNKNOWN, *sorted(set(text))])

    def __len__(self):
        return len(self.tokens)

    def normalize(self, text):
        """``letters``: lowercase, and each run of non-letters becomes one space; ``chars``: unchanged."""
        if self.kind == "letters":
            return _NON_LETTERS.sub(" ", text.lower())
        return text

    def encode(self, text, *, strict=False):
        """Token ids (int32) of ``text`` after :meth:`normalize`.

        Args:
            text: the text to encode.
            strict: raise on a character outside the vocabulary instead of mapping it to ``<unk>`` (id 0).

        Raises:
            DataError: ``strict`` and ``text`` holds characters the vocabulary lacks (they are named).
        """
        text = self.normalize(text)
        if strict:
            unknown = sorted({c for c in text if c not in self._ids})
            if unknown:
                raise DataError(f"The text holds characters this model never saw in training: "
                                f"{''.join(unknown)!r}. Known characters: {''.join(self.tokens[1:])!r}.")
        return np.fromiter((self._ids.get(c, 0) for c in text), dtype="int32", count=len(text))

    def decode(self, ids):
        """The text of token ids; ``<unk>`` (id 0) decodes to nothing."""
        return "".join(self.tokens[int(i)] for i in ids if int(i) != 0)
