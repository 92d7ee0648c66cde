"""Translation (the notes' many-to-many RNN, an encoder-decoder): source sentences to target sentences.

A pair whose source or target has more than ``seq_len - 1`` tokens is left out of training and testing (their
count is reported). Sentences are word tokens (:class:`kzoo.tasks.tokens.TokenVocab`, one vocabulary per
language, from the training pairs that are kept; tokens seen fewer than :attr:`TranslationTask.min_count` times
become ``<unk>``), so the output softmax is only as wide as the sentences trained on need. The model reads ``source`` (tokens, ``<eos>``) and ``target_in`` (``<bos>``, tokens) and learns
``target_out`` (tokens, ``<eos>``) with teacher forcing; padding is masked.

The final evaluation decodes every distinct held-out source sentence (greedy, or beam search with ``beam``)
and scores it against all its held-out translations: sacrebleu's corpus BLEU and the exact-match rate. It also
translates d2l's four example sentences and, for a model with an ``attention`` layer, draws ``attention.png``.
"""

import os

import numpy as np

from kzoo.errors import DataError, OptionError
from kzoo.tasks import names
from kzoo.tasks.base import FitData, Prepared, Task, split_validation
from kzoo.tasks.tokens import TokenVocab, pad

EXAMPLES = ("go .", "i lost .", "he's calm .", "i'm home .")  # d2l section 10.7's test sentences


class TranslationTask(Task):
    name = names.TRANSLATION
    monitor = "val_loss"
    file_dataset = "fra_eng"
    min_count = 5

    def __init__(self, source_vocab=None, target_vocab=None, seq_len=16):
        self.source_vocab, self.target_vocab, self.seq_len = source_vocab, target_vocab, seq_len
        self.beam = 1
        self.alignment = None

    @classmethod
    def from_run(cls, run_config):
        """The task of a trained run, with the vocabularies stored in its ``config.yaml``."""
        extra = run_config.get("tokens") or {}
        if "source" not in extra:
            raise DataError("This run folder holds no source and target vocabularies; it is not a translation run.")
        return cls(TokenVocab(extra["kind"], extra["source"]), TokenVocab(extra["kind"], extra["target"]),
                   int(run_config["seq_len"]))

    def prepare(self, dataset, config):
        if dataset.task != names.TRANSLATION:
            raise DataError(f"A translation model trains on sentence pairs; dataset {dataset.name!r} holds "
                            f"{dataset.task} data. Use --data fra_eng or --data PAIRS.tsv (source<TAB>target lines).")
        if config.vocab != "words":
            raise OptionError(f"Translation reads word tokens: --vocab words. Received: vocab={config.vocab!r}.")
        self.seq_len = config.seq_len
        x_train, y_train, x_test, y_test = dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test
        if config.limit:
            x_train, y_train = x_train[: config.limit], y_train[: config.limit]
            x_test, y_test = x_test[: config.limit], y_test[: config.limit]
        train_keep, test_keep = self._fits(x_train, y_train), self._fits(x_test, y_test)
        if self.source_vocab is None:  # a restored run (``from_run``) keeps its own vocabularies
            self.source_vocab = TokenVocab.build("words", x_train[train_keep], min_count=self.min_count)
            self.target_vocab = TokenVocab.build("words", y_train[train_keep], min_count=self.min_count)
        if not train_keep.any() or not test_keep.any():
            raise DataError(f"No training or no test pair of {dataset.name!r} has at most {self.seq_len - 1} tokens "
                            f"a side; raise --seq-len.")
        x = self.encode(x_train[train_keep], y_train[train_keep])
        x_train, y_train, x_val, y_val = split_validation(x[:2], x[2], config.val_split, config.seed)
        return Prepared(x_train, y_train, x_val, y_val, x_test[test_keep], y_test[test_keep],
                        (self.seq_len, self.seq_len), len(self.target_vocab),
                        extra={"tokens": {"kind": "words", "source": self.source_vocab.tokens,
                                          "target": self.target_vocab.tokens},
                               "pairs_too_long": {"train": int((~train_keep).sum()),
                                                  "test": int((~test_keep).sum())}})

    def _fits(self, sources, targets):
        limit = self.seq_len - 1
        return np.array([len(TokenVocab.split("words", s)) <= limit and len(TokenVocab.split("words", t)) <= limit
                         for s, t in zip(sources, targets)],
                        dtype=bool)

    def encode_sources(self, sentences):
        return pad([self.source_vocab.encode(s) for s in sentences], self.seq_len, eos=True)

    def encode(self, sources, targets):
        """``[source, target_in, target_out]`` int32 arrays of sentence pairs."""
        ids = [self.target_vocab.encode(t) for t in targets]
        return [self.encode_sources(sources), pad(ids, self.seq_len, bos=True), pad(ids, self.seq_len, eos=True)]

    def build_kwargs(self, prepared, config):
        from kzoo.registry import model_info

        if model_info(config.model).get("task") != names.TRANSLATION:
            raise OptionError(f"Translation needs an encoder-decoder (seq2seq, seq2seq_attention). "
                              f"Received: {config.model}.")
        return {**config.options, "input_shape": prepared.input_shape, "num_classes": prepared.num_classes,
                "source_vocab": len(self.source_vocab)}

    def fit_data(self, prepared, config, initial_epoch=0):
        validation = (prepared.x_val, prepared.y_val) if prepared.x_val is not None else None
        return FitData(prepared.x_train, prepared.y_train, validation, len(prepared.y_train))

    def loss(self, name):
        import keras

        if name != "sparse_cce":
            raise OptionError(f"Translation trains with the sparse categorical cross-entropy. Received: loss={name!r}.")
        return keras.losses.SparseCategoricalCrossentropy(ignore_class=0)

    def metrics(self, loss):
        import keras

        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def translate(self, model, sentences, *, beam=1, max_len=None):
        """Translations of source sentences (normalised like the training data; unknown source words are ``<unk>``).

        The decoder never emits ``<unk>`` (it cannot match any reference word): each step takes the best real word.
        """
        from kzoo.data.sentences import preprocess_nmt
        from kzoo.tasks.decoding import decode
        from kzoo.tasks.tokens import UNK

        sources = self.encode_sources([preprocess_nmt(s) for s in sentences])
        ids = decode(model, [sources], beam=beam, max_len=max_len, banned=(UNK,))
        return [self.target_vocab.decode(i) for i in ids]

    def evaluate(self, model, x, y, *, forward=None, class_names=None, batch_size=256, loss="sparse_cce"):
        """BLEU and exact match of every distinct held-out source sentence against all its translations.

        The decoder calls the model step by step (:mod:`kzoo.tasks.decoding`); ``forward`` is not used.
        """
        from kzoo.tasks.text_metrics import corpus_bleu, exact_match

        references = {}
        for source, target in zip(x, y):
            references.setdefault(source, []).append(target)
        sources = list(references)
        hypotheses = self.translate(model, sources, beam=self.beam)
        refs = [references[s] for s in sources]
        bleu, signature = corpus_bleu(hypotheses, refs)
        if _attention_layer(model) is not None:
            self.alignment = (model, sources[:4], hypotheses[:4])
        return {"samples": len(sources), "pairs": int(len(x)), "bleu": round(bleu, 4),
                "exact_match": round(exact_match(hypotheses, refs), 6), "beam": self.beam,
                "bleu_signature": signature,
                "examples": [{"source": s, "translation": t}
                             for s, t in zip(EXAMPLES, self.translate(model, EXAMPLES, beam=self.beam))],
                "held_out_examples": [{"source": s, "translation": h, "references": r}
                                      for s, h, r in list(zip(sources, hypotheses, refs))[:10]]}

    def save_plots(self, report, run_dir):
        if self.alignment is not None:
            plot_attention(*self.alignment, self, os.path.join(run_dir, "attention.png"))


def _attention_layer(model):
    try:
        return model.get_layer("attention")
    except ValueError:
        return None


def attention_weights(model, task, source, translation):
    """The attention of each emitted target token over the source tokens, ``(target tokens, source tokens)``."""
    import keras

    scores_model = keras.Model(model.inputs, _attention_layer(model).output[1])
    src = task.encode_sources([source])
    target_ids = task.target_vocab.encode(translation)
    target_in = pad([target_ids], task.seq_len, bos=True)
    scores = np.asarray(keras.ops.convert_to_numpy(scores_model([src, target_in], training=False)))[0]
    rows = min(len(target_ids) + 1, task.seq_len)  # the tokens and <eos>
    columns = int((src[0] != 0).sum())
    return scores[:rows, :columns]


def plot_attention(model, sources, translations, task, path):
    """A heat map per held-out sentence: emitted tokens (rows) against source tokens (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sources), figsize=(3.6 * len(sources), 3.6))
    for ax, source, translation in zip(np.atleast_1d(axes), sources, translations):
        weights = attention_weights(model, task, source, translation)
        ax.imshow(weights, cmap="Reds", vmin=0.0, vmax=1.0)
        src_tokens = [task.source_vocab.tokens[i] for i in task.encode_sources([source])[0] if i][: weights.shape[1]]
        out_tokens = (translation.split() + ["<eos>"])[: weights.shape[0]]
        ax.set_xticks(range(len(src_tokens)), src_tokens, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(out_tokens)), out_tokens, fontsize=8)
    fig.suptitle("attention over the source (held-out sentences)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
