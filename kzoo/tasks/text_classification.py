"""Text classification (the notes' many-to-one RNN, "sentiment analysis"): a text to one of its classes.

A sequence classifier (``rnn``, ``lstm``, ``gru`` and the bidirectional ones) trains this task when its data
is a text-classification dataset (``--data sentiment``). Texts become token ids (``--vocab words``: lower-cased
words and punctuation marks, the default; ``--vocab chars``: characters), cut to ``seq_len`` tokens and
0-padded at the end; the model embeds them with a masking embedding (``mask_zero``), so padding is skipped.
Kzoo's torch training loop does not take masks: on torch the run trains with ``keras.Model.fit`` and says so.
The final evaluation is the classifier's: accuracy, per-class precision/recall/F1 (``macro_f1``) and the
confusion matrix.
"""

import os

import numpy as np

from kzoo.errors import DataError, OptionError
from kzoo.tasks import names
from kzoo.tasks.base import FitData, Prepared, Task, split_validation
from kzoo.tasks.classification import classification_report, plot_confusion_matrix
from kzoo.tasks.tokens import TokenVocab, pad


class TextClassificationTask(Task):
    name = names.TEXT_CLASSIFICATION
    monitor = "val_accuracy"
    file_dataset = "sentiment"
    recipe = {"seq_len": 48, "vocab": "words", "epochs": 4, "batch_size": 32, "lr": 0.003, "schedule": "cosine",
              "clipnorm": 1.0, "options": {"units": 64, "num_layers": 1, "embedding_dim": 64, "dropout": 0.0}}

    def __init__(self, vocab=None, seq_len=None):
        self.vocab, self.seq_len = vocab, seq_len

    @classmethod
    def from_run(cls, run_config):
        """The task of a trained run, with the vocabulary stored in its ``config.yaml``."""
        tokens = run_config.get("tokens") or {}
        if "text" not in tokens:
            raise DataError("This run folder holds no text vocabulary; it is not a text-classification run.")
        return cls(TokenVocab(tokens["kind"], tokens["text"]), int(run_config["seq_len"]))

    def prepare(self, dataset, config):
        if dataset.task != names.TEXT_CLASSIFICATION:
            raise DataError(f"A text classifier trains on labelled texts; dataset {dataset.name!r} holds "
                            f"{dataset.task} data. Use --data sentiment or --data FILE.tsv (text<TAB>label lines).")
        if config.vocab not in ("words", "chars"):
            raise OptionError(f"A text classifier reads --vocab words or chars. Received: vocab={config.vocab!r}.")
        x_train, y_train = dataset.x_train, np.asarray(dataset.y_train).astype("int64")
        x_test, y_test = dataset.x_test, np.asarray(dataset.y_test).astype("int64")
        if config.limit:
            x_train, y_train = x_train[: config.limit], y_train[: config.limit]
            x_test, y_test = x_test[: config.limit], y_test[: config.limit]
        self.seq_len = config.seq_len
        if self.vocab is None:
            self.vocab = TokenVocab.build(config.vocab, x_train)
        x_train, y_train, x_val, y_val = split_validation(self.encode(x_train), y_train, config.val_split,
                                                          config.seed)
        return Prepared(x_train, y_train, x_val, y_val, self.encode(x_test), y_test, (self.seq_len,),
                        int(dataset.num_classes), list(dataset.class_names) if dataset.class_names else None,
                        extra={"tokens": {"kind": self.vocab.kind, "text": self.vocab.tokens}})

    def encode(self, texts):
        return pad([self.vocab.encode(t) for t in texts], self.seq_len)

    def build_kwargs(self, prepared, config):
        from kzoo.registry import model_info

        options = model_info(config.model).get("options", {})
        if "embedding_dim" not in options or model_info(config.model).get("task") != names.SEQUENCE_CLASSIFICATION:
            raise OptionError(f"Text classification needs a sequence classifier (rnn, lstm, gru, birnn, bilstm, "
                              f"bigru). Received: {config.model}.")
        return {**config.options, "input_shape": prepared.input_shape, "num_classes": prepared.num_classes,
                "vocab_size": len(self.vocab)}

    def fit_data(self, prepared, config, initial_epoch=0):
        validation = (prepared.x_val, prepared.y_val) if prepared.x_val is not None else None
        return FitData(prepared.x_train, prepared.y_train, validation, len(prepared.y_train))

    def loss(self, name):
        import keras

        if name != "sparse_cce":
            raise OptionError(f"A text classifier trains with the sparse categorical cross-entropy. "
                              f"Received: loss={name!r}.")
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self, loss):
        import keras

        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def evaluate(self, model, x, y, *, forward, class_names=None, batch_size=256, loss="sparse_cce"):
        return classification_report(model, x, y, forward=forward, class_names=class_names, batch_size=batch_size)

    def classify(self, model, texts, class_names=None, *, forward):
        """The most probable class of each text, with its probability (``forward``: :mod:`kzoo.tasks.base`)."""
        from kzoo.tasks.base import predict_proba

        probs = predict_proba(model, self.encode(texts), forward=forward)
        return [{"text": text, "class": int(row.argmax()),
                 "name": class_names[int(row.argmax())] if class_names else str(int(row.argmax())),
                 "probability": round(float(row.max()), 6)} for text, row in zip(texts, probs)]

    def save_plots(self, report, run_dir):
        plot_confusion_matrix(report, os.path.join(run_dir, "confusion_matrix.png"))
