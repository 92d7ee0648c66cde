"""Word tokens and their text: the decoder's output must read like (and score against) d2l's sentences."""

import numpy as np

from kzoo.data.sentences import fra_eng
from kzoo.tasks.tokens import EOS, TokenVocab, detokenize_words, tokenize_words


def test_words_and_punctuation_are_tokens():
    assert tokenize_words("A wonderful, moving film.") == ["a", "wonderful", ",", "moving", "film", "."]
    assert tokenize_words("Qu'est-ce que c'est ?") == ["qu'est", "-", "ce", "que", "c'est", "?"]


def test_detokenized_translations_are_written_as_the_references_are():
    """Tokens joined back give the preprocessed French sentence itself (hyphenated words whole): a hypothesis
    ``dis - moi !`` would score no BLEU against the reference ``dis-moi !``."""
    data = fra_eng()
    targets = np.concatenate([data.y_train, data.y_test])
    def words(text):  # as sacrebleu splits them: any Unicode space (some sentences hold a thin space)
        return " ".join(text.split())

    same = np.mean([detokenize_words(tokenize_words(t)) == words(t) for t in targets])
    hyphenated = [t for t in targets if "-" in t]
    assert len(hyphenated) > 1000 and same > 0.99  # the rest: typographic apostrophes (c’est), quotes
    assert np.mean([detokenize_words(tokenize_words(t)) == words(t) for t in hyphenated]) > 0.99
    assert detokenize_words(tokenize_words("montre-le-lui !")) == "montre-le-lui !"


def test_decode_stops_at_eos_and_joins_hyphenated_words():
    vocab = TokenVocab.build("words", ["dis-moi !", "dis-moi tout ."])
    ids = vocab.encode("dis-moi tout !") + [EOS] + vocab.encode("dis")
    assert vocab.decode(ids) == "dis-moi tout !"
    assert TokenVocab("chars", vocab.tokens).decode([]) == ""
