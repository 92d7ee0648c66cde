"""The character language model (``--task lm``): training windows, held-out perplexity, text generation."""

import numpy as np

from kzoo.errors import CheckpointError, DataError, OptionError
from kzoo.tasks import names
from kzoo.tasks.base import FitData, Prepared, Task, predict_proba
from kzoo.tasks.vocab import CharVocab


class LanguageModelTask(Task):
    """A character language model (the notes' synchronous many-to-many RNN) over a text dataset.

    The text becomes token ids (:class:`kzoo.tasks.vocab.CharVocab`, ``--vocab``) and splits into three
    consecutive parts: training text, then ``val_split`` of it (default 10%) for the per-epoch ``val_perplexity``
    that picks the best checkpoint, then another ``val_split`` as the test text, used for nothing but the final
    evaluation (which also writes a generated sample). ``--limit N`` keeps the first ``N`` characters of the
    training text only; validation and test text stay whole. Each training epoch cuts the training text into
    ``seq_len``-token windows from a fresh random offset, in a fresh random order; the target of each window is
    the window shifted by one token.
    """

    name = names.LANGUAGE_MODEL
    monitor = "val_perplexity"
    file_dataset = "timemachine"
    recipe = {"data": "timemachine", "seq_len": 64, "vocab": "letters", "clipnorm": 1.0, "epochs": 12,
              "batch_size": 32, "lr": 0.005, "schedule": "constant",
              "options": {"units": 256, "num_layers": 1}}
    sample_prefix = "time traveller"

    def __init__(self):
        self.vocab = None

    def prepare(self, dataset, config):
        if dataset.task != "text":
            raise DataError(f"A language model trains on text; dataset {dataset.name!r} holds {dataset.task} "
                            f"data. Use --data timemachine or --data FILE.txt.")
        if not config.val_split:
            raise OptionError("A language model needs held-out text for its perplexity: val_split must be > 0. "
                              f"Received: val_split={config.val_split!r}.")
        if config.val_split >= 0.5:
            raise OptionError("A language model holds out val_split of its text for validation and as much again "
                              f"for the test: val_split must be < 0.5. Received: val_split={config.val_split!r}.")
        text = dataset.text
        val_start = int(len(text) * (1 - 2 * config.val_split))
        test_start = int(len(text) * (1 - config.val_split))
        train_text = text[:val_start][: config.limit] if config.limit else text[:val_start]
        self.vocab = CharVocab.build(config.vocab, train_text)
        parts = {"training": train_text, "validation": text[val_start:test_start], "test": text[test_start:]}
        ids = {part: self.vocab.encode(chunk) for part, chunk in parts.items()}
        for part, tokens in ids.items():
            if len(tokens) < 2 * config.seq_len + 1:
                raise DataError(f"The {part} text of {dataset.name!r} has {len(tokens)} characters; seq_len="
                                f"{config.seq_len} needs at least {2 * config.seq_len + 1}. Use more text or a "
                                f"smaller --seq-len.")
        from kzoo.tasks.samplers import windows

        x_val, y_val = windows(ids["validation"], config.seq_len)
        x_test, y_test = windows(ids["test"], config.seq_len)
        return Prepared(ids["training"], None, x_val, y_val, x_test, y_test, (config.seq_len,), None,
                        extra={"vocab_kind": self.vocab.kind, "vocab_tokens": self.vocab.tokens})

    def build_kwargs(self, prepared, config):
        from kzoo.registry import model_info

        head = model_info(config.model).get("options", {}).get("head", {})
        if "lm" not in (head.get("choices") or []):
            raise OptionError(f"--task lm needs a sequence model with a language-model head (rnn, gru, lstm). "
                              f"Received: {config.model}.")
        return {**config.options, "input_shape": prepared.input_shape, "num_classes": None, "head": "lm",
                "vocab_size": len(self.vocab)}

    def fit_data(self, prepared, config, initial_epoch=0):
        from kzoo.tasks.samplers import WindowBatches

        batches = WindowBatches(prepared.x_train, config.seq_len, config.batch_size, seed=config.seed,
                                first_epoch=initial_epoch)
        return FitData(batches, None, (prepared.x_val, prepared.y_val), batches.samples)

    def loss(self, name):
        import keras

        if name != "sparse_cce":
            raise OptionError(f"A language model trains with the sparse categorical cross-entropy. "
                              f"Received: loss={name!r}.")
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self, loss):
        from kzoo.layers import Perplexity

        return [Perplexity()]

    def evaluate(self, model, x, y, *, forward, class_names=None, batch_size=256, loss="sparse_cce"):
        """Held-out loss and perplexity, and a 200-character sample generated from ``sample_prefix``."""
        probs = predict_proba(model, x, batch_size, forward=forward)
        picked = np.take_along_axis(probs, np.asarray(y)[..., None].astype("int64"), axis=-1)
        loss_value = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
        prefix = self.sample_prefix if self.vocab.kind == "letters" else self.vocab.decode(x[0][:16])
        text = sample(model, self.vocab, prefix, length=200, temperature=1.0, seed=0, window=x.shape[1])
        return {"samples": int(y.size), "loss": round(loss_value, 6), "perplexity": round(float(np.exp(loss_value)), 4),
                "sample": {"prefix": prefix, "temperature": 1.0, "text": text}}


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

    The model was trained on windows of ``seq_len`` tokens, each starting from a zero state. Generation does
    the same: for every new character it runs the network on the last ``window`` tokens (fewer while the text
    is shorter) from a zero state and samples the next token from the last step's softmax.

    Args:
        model: a language model taking token ids ``(batch, steps)`` (a fixed ``steps`` is fine: it is cloned
            with a variable-length input).
        vocab: the :class:`kzoo.tasks.vocab.CharVocab` the model was trained with.
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
