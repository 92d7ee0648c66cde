"""BLEU through sacrebleu on known strings, exact match and token accuracy by hand."""

import math

import pytest

from kzoo.tasks.text_metrics import corpus_bleu, exact_match, token_accuracy


def test_bleu_of_a_perfect_and_an_empty_translation():
    assert corpus_bleu(["je suis chez moi ."], [["je suis chez moi ."]])[0] == pytest.approx(100.0)
    assert corpus_bleu(["xyz"], [["je suis chez moi ."]])[0] == pytest.approx(0.0)


def test_bleu_matches_the_formula_on_a_known_pair():
    # hypothesis 6 tokens, reference 7: n-gram precisions 6/6, 5/5, 4/4, 3/3 -> BLEU = brevity penalty e^(1-7/6)
    score, signature = corpus_bleu(["the cat is on the mat"], [["the cat is on the mat ."]])
    assert score == pytest.approx(100 * math.exp(1 - 7 / 6), rel=1e-6)
    assert "tok:13a" in signature


def test_bleu_takes_the_best_of_several_references_of_varying_number():
    one = corpus_bleu(["il est calme ."], [["il est calme ."]])[0]
    several = corpus_bleu(["il est calme .", "va !"], [["il est calme .", "il est tranquille ."], ["va !"]])[0]
    assert one == pytest.approx(100.0) and several == pytest.approx(100.0)


def test_exact_match_and_token_accuracy():
    assert exact_match(["va !", "cours !"], [["va !", "bouge !"], ["courez !"]]) == 0.5
    assert token_accuracy(["seven two", "one"], ["seven three", "one four"]) == pytest.approx(2 / 4)
