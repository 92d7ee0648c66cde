"""Text generation from a trained character language model (``kzoo generate``).

The model was trained on windows of ``seq_len`` tokens, each starting from a zero state. Generation does the
same: for every new character it runs the network on the last ``seq_len`` tokens (fewer while the text is
shorter) from a zero state and samples the next token from the last step's softmax. To take any length,
the trained network is cloned with a variable-length input ``(None,)`` and given the trained weights.
"""

import os

import numpy as np

from kzoo.errors import CheckpointError, DataError, OptionError


def variable_length(model):
    """The same network with a ``(None,)`` token input, sharing nothing but a copy of the trained weights."""
    import keras

    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 2:
        raise CheckpointError(f"{model.name} is not a language model: it takes inputs "
                              f"{[tuple(i.shape) for i in model.inputs]}, not one sequence of token ids.")
    inputs = keras.Input(shape=(None,), dtype="int32", name=model.inputs[0].name)
    clone = keras.models.clone_model(model, input_tensors=inputs)
    clone.set_weights(model.get_weights())
    return clone


def sample(model, vocab, prefix, *, length=200, temperature=1.0, seed=None, window=64):
    """Continue ``prefix`` by ``length`` characters.

    Args:
        model: a language model taking token ids ``(batch, steps)`` (a fixed ``steps`` is fine: it is cloned
            with a variable-length input).
        vocab: the :class:`kzoo.engine.text.CharVocab` the model was trained with.
        prefix: the start of the text; normalised like the training text, then encoded (unknown characters
            are an error).
        length: characters to generate.
        temperature: ``> 0`` divides the log-probabilities (lower: safer, higher: more varied); ``0`` always
            takes the most likely character.
        seed: seed of the sampling; ``None`` draws a fresh one.
        window: the most tokens the network sees at once (the training ``seq_len``).

    Returns:
        The normalised prefix followed by the generated characters.
    """
    import keras

    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise OptionError(f"length must be an integer >= 0. Received: length={length!r}.")
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise OptionError(f"temperature must be >= 0. Received: temperature={temperature!r}.")
    ids = list(vocab.encode(prefix, strict=True))
    if not ids:
        raise DataError(f"The prefix must hold at least one character. Received: prefix={prefix!r}.")
    if model.inputs[0].shape[1] is not None:
        model = variable_length(model)
    rng = np.random.default_rng(seed)
    for _ in range(length):
        context = np.asarray([ids[-window:]], dtype="int32")
        probs = np.asarray(keras.ops.convert_to_numpy(model(context, training=False))[0, -1], dtype="float64")
        probs[0] = 0.0  # never emit <unk>
        if temperature == 0:
            ids.append(int(np.argmax(probs)))
            continue
        logits = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
        weights = np.exp(logits - logits.max())
        weights[0] = 0.0
        ids.append(int(rng.choice(len(weights), p=weights / weights.sum())))
    return vocab.decode(ids)


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
    from kzoo.engine.evaluation import read_run_config

    set_backend(backend)
    from kzoo.engine.checkpoints import load_model
    from kzoo.engine.text import CharVocab

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
