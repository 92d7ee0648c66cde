"""Image captioning (the notes' one-to-many RNN): an image to a sentence, word by word.

Captions are word tokens (:class:`kzoo.tasks.tokens.TokenVocab`, from the training captions). The model reads
``image`` and ``caption_in`` (``<bos>``, tokens) and learns ``caption_out`` (tokens, ``<eos>``) with teacher
forcing; ``caption_steps`` is the longest training caption plus ``<eos>``. The final evaluation decodes every
test image (greedy, or beam search with ``beam``) and reports the exact-match rate, position-wise token
accuracy and sacrebleu's corpus BLEU against the true captions.
"""

import numpy as np

from kzoo.errors import DataError, OptionError
from kzoo.tasks import names
from kzoo.tasks.base import FitData, Prepared, Task, images_to_float, split_validation
from kzoo.tasks.tokens import TokenVocab, pad


class CaptioningTask(Task):
    name = names.CAPTIONING
    monitor = "val_loss"

    def __init__(self, vocab=None, steps=None):
        self.vocab, self.steps = vocab, steps
        self.beam = 1

    @classmethod
    def from_run(cls, run_config):
        """The task of a trained run, with the caption vocabulary stored in its ``config.yaml``."""
        tokens = run_config.get("tokens") or {}
        if "captions" not in tokens:
            raise DataError("This run folder holds no caption vocabulary; it is not a captioning run.")
        return cls(TokenVocab(tokens["kind"], tokens["captions"]), int(tokens["caption_steps"]))

    def prepare(self, dataset, config):
        if dataset.task != names.CAPTIONING:
            raise DataError(f"A captioner trains on captioned images; dataset {dataset.name!r} holds "
                            f"{dataset.task} data. Use --data digit_captions.")
        if config.vocab != "words":
            raise OptionError(f"Captions are word tokens: --vocab words. Received: vocab={config.vocab!r}.")
        x_train, x_test = images_to_float(dataset.x_train), images_to_float(dataset.x_test)
        y_train, y_test = np.asarray(dataset.y_train), np.asarray(dataset.y_test)
        if config.limit:
            x_train, y_train = x_train[: config.limit], y_train[: config.limit]
            x_test, y_test = x_test[: config.limit], y_test[: config.limit]
        if self.vocab is None:
            self.vocab = TokenVocab.build("words", y_train)
            self.steps = max(len(self.vocab.encode(c)) for c in y_train) + 1
        ids = [self.vocab.encode(c) for c in y_train]
        x = [x_train, pad(ids, self.steps, bos=True)]
        x_train, y_train, x_val, y_val = split_validation(x, pad(ids, self.steps, eos=True), config.val_split,
                                                          config.seed)
        return Prepared(x_train, y_train, x_val, y_val, x_test, y_test, tuple(x_test.shape[1:]), len(self.vocab),
                        extra={"tokens": {"kind": "words", "captions": self.vocab.tokens,
                                          "caption_steps": self.steps}})

    def build_kwargs(self, prepared, config):
        from kzoo.registry import model_info

        if model_info(config.model).get("task") != names.CAPTIONING:
            raise OptionError(f"Captioning needs a captioner model (captioner). Received: {config.model}.")
        return {**config.options, "input_shape": prepared.input_shape, "num_classes": prepared.num_classes,
                "caption_steps": self.steps}

    def fit_data(self, prepared, config, initial_epoch=0):
        validation = (prepared.x_val, prepared.y_val) if prepared.x_val is not None else None
        return FitData(prepared.x_train, prepared.y_train, validation, len(prepared.y_train))

    def loss(self, name):
        import keras

        if name != "sparse_cce":
            raise OptionError(f"A captioner trains with the sparse categorical cross-entropy. Received: loss={name!r}.")
        return keras.losses.SparseCategoricalCrossentropy(ignore_class=0)

    def metrics(self, loss):
        import keras

        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def caption(self, model, images, *, beam=1, max_len=None):
        """Captions of float images ``(N, H, W, C)`` in [0, 1]."""
        from kzoo.tasks.decoding import decode

        return [self.vocab.decode(ids) for ids in decode(model, [images], beam=beam, max_len=max_len)]

    def evaluate(self, model, x, y, *, forward=None, class_names=None, batch_size=256, loss="sparse_cce"):
        """Exact match, token accuracy and BLEU of the decoded captions of every test image.

        The decoder calls the model step by step (:mod:`kzoo.tasks.decoding`); ``forward`` is not used.
        """
        from kzoo.tasks.text_metrics import corpus_bleu, exact_match, token_accuracy

        hypotheses = self.caption(model, x, beam=self.beam)
        truth = [str(c) for c in y]
        bleu, signature = corpus_bleu(hypotheses, [[c] for c in truth])
        return {"samples": len(truth), "exact_match": round(exact_match(hypotheses, [[c] for c in truth]), 6),
                "token_accuracy": round(token_accuracy(hypotheses, truth), 6), "bleu": round(bleu, 4),
                "bleu_signature": signature, "beam": self.beam,
                "examples": [{"caption": h, "truth": t} for h, t in list(zip(hypotheses, truth))[:10]]}
