"""Scores of generated text: corpus BLEU (sacrebleu), exact match, token accuracy."""

import numpy as np


def corpus_bleu(hypotheses, references):
    """sacrebleu's corpus BLEU (13a tokenizer) of hypotheses against one list of references each.

    Args:
        hypotheses: one string per example.
        references: one list of reference strings per example (any number, at least one).

    Returns:
        ``(score, signature)``: BLEU in [0, 100] and sacrebleu's signature string.
    """
    import sacrebleu

    width = max(len(r) for r in references)
    streams = [[refs[i] if i < len(refs) else None for refs in references] for i in range(width)]
    bleu = sacrebleu.metrics.BLEU(force=True)  # the texts are tokenized on purpose (d2l's spaced punctuation)
    return float(bleu.corpus_score(list(hypotheses), streams).score), str(bleu.get_signature())


def exact_match(hypotheses, references):
    """The share of hypotheses equal to one of their references (after stripping spaces)."""
    if not hypotheses:
        return 0.0
    hits = [h.strip() in {r.strip() for r in refs} for h, refs in zip(hypotheses, references)]
    return float(np.mean(hits))


def token_accuracy(hypotheses, targets):
    """Position-wise token accuracy against one target each, over the longer of the two token lists."""
    correct = total = 0
    for hypothesis, target in zip(hypotheses, targets):
        h, t = hypothesis.split(), target.split()
        correct += sum(a == b for a, b in zip(h, t))
        total += max(len(h), len(t))
    return correct / total if total else 0.0
