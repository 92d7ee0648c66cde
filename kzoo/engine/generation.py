"""Text generation from a run folder of a character language model (``kzoo generate``).

The sampling itself is :func:`kzoo.tasks.language_model.sample`; this module finds the run's checkpoint and
vocabulary.
"""

import os

from kzoo.errors import CheckpointError


def generate(run, prefix="time traveller", length=200, temperature=1.0, *, seed=None, trust=False, backend=None):
    """Generate text from a run folder of a character language model (``kzoo generate``).

    Args:
        run: a run folder trained with ``--task lm`` (its ``config.yaml`` holds the vocabulary).
        prefix: the start of the text.
        length: characters to generate after the prefix.
        temperature: sampling temperature (``0``: always the most likely character).
        seed: sampling seed; ``None`` draws a fresh one.
        trust: allow unsafe checkpoint content (Lambda layers); only for files you trust.
        backend: the Keras backend (default ``$KERAS_BACKEND``, then torch).

    Returns:
        The normalised prefix followed by ``length`` generated characters.

    Raises:
        CheckpointError: ``run`` is not a run folder of a language model.
        DataError: the prefix is empty or holds characters the model never saw.
    """
    from kzoo.backend import set_backend
    from kzoo.engine.runs import read_run_config

    set_backend(backend)
    from kzoo.engine.checkpoints import load_model
    from kzoo.tasks.language_model import sample
    from kzoo.tasks.vocab import CharVocab

    if not os.path.isdir(run):
        raise CheckpointError(f"No such run folder: {run}")
    config = read_run_config(run)
    if not config or not config.get("vocab_tokens"):
        kind = (config or {}).get("task_kind")
        raise CheckpointError(f"{run} is not a language-model run folder (no vocabulary in its config.yaml"
                              + (f"; it trained task {kind!r}" if kind else "") + "). Train one with "
                              "`kzoo train lstm --task lm`.")
    vocab = CharVocab(config["vocab_kind"], config["vocab_tokens"])
    model = load_model(run, trust=trust, compile=False)
    return sample(model, vocab, prefix, length=length, temperature=temperature, seed=seed,
                  window=int(config.get("seq_len") or model.inputs[0].shape[1]))
