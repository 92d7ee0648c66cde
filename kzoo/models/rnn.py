"""Recurrent sequence models: simple RNN, LSTM and GRU, one- or bidirectional, as classifiers or language models.

Papers:

* simple RNN: J. L. Elman, "Finding Structure in Time", Cognitive Science 1990;
* LSTM: S. Hochreiter, J. Schmidhuber, "Long Short-Term Memory", Neural Computation 1997;
* GRU: K. Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for Statistical Machine
  Translation", EMNLP 2014. https://arxiv.org/abs/1406.1078
* bidirectional RNN: M. Schuster, K. K. Paliwal, "Bidirectional Recurrent Neural Networks", IEEE Trans. Signal
  Processing 1997.

``head="classify"`` (the default) is the notes' many-to-one model: ``num_layers`` stacked recurrent layers, the
last returning only its final state, then ``classifier_head``. The canonical input is sequential MNIST: a
28x28 image read row by row as 28 steps of 28 features; an image ``(H, W, C)`` input becomes H steps of W*C
features inside the graph (``kzoo.layers.sequence_inputs``).

Text classification (the notes' "sentiment analysis"): with ``head="classify"`` and a one-axis
``input_shape`` ``(steps,)``, the input is integer token ids (0 is padding), embedded by a trainable
``Embedding(vocab_size, embedding_dim, mask_zero=True)``, so the recurrent layers skip the padding and the
last layer's final state is that of the last real token (``kzoo.tasks.text_classification``).

``head="lm"`` is the notes' synchronous many-to-many model (sequence generation): the input is a sequence of
integer token ids, shape ``(steps,)`` (default ``(35,)``), one-hot encoded over ``vocab_size`` tokens, and every
step predicts a softmax over the vocabulary (output ``(batch, steps, vocab_size)``). A bidirectional network
sees the future of each step, so it cannot be a language model.

The recurrent layers keep Keras' defaults that allow its cuDNN kernels on a GPU (TensorFlow and torch backends,
LSTM and GRU): activation ``tanh``, recurrent activation ``sigmoid``, ``recurrent_dropout=0``, ``unroll=False``,
``use_bias=True`` and, for the GRU, ``reset_after=True``. Dropout is applied between layers instead, by
``Dropout`` layers. The simple RNN has no cuDNN kernel in Keras.
"""

from keras import initializers, layers

from kzoo.layers import classifier_head, sequence_inputs
from kzoo.models import _base

MODEL_CARD = {
    "family": "rnn",
    "task": "sequence_classification",
    "input_shape": (28, 28),
    "num_classes": 10,
    "small_inputs": "any (steps, features); an image (H, W, C) is read as H steps of W*C features",
    "recipe": {"optimizer": "adam", "lr": 0.004, "batch_size": 32, "epochs": 3, "schedule": "cosine",
               "clipnorm": 1.0, "options": {"num_layers": 2, "units": 192}},
    "options": {
        "units": {"default": 128, "min": 1, "help": "hidden units of each recurrent layer (per direction)"},
        "num_layers": {"default": 1, "min": 1, "help": "stacked recurrent layers"},
        "bidirectional": {"default": False, "help": "read the sequence both ways and concatenate the states"},
        "dropout": {"default": 0.0, "min": 0.0, "max": 0.95, "help": "dropout between stacked recurrent layers"},
        "head": {"default": "classify", "choices": ["classify", "lm"],
                 "help": "classify: many-to-one classifier; lm: per-step softmax over vocab_size "
                         "(int token input, default input_shape (35,))"},
        "vocab_size": {"default": 28, "min": 2,
                       "help": "tokens of the one-hot input and output (head=lm), or of the embedded token input "
                               "(head=classify with input_shape (steps,))"},
        "embedding_dim": {"default": 64, "min": 1,
                          "help": "size of the token embedding (head=classify with input_shape (steps,) only)"},
        "input_norm": {"default": True,
                       "help": "batch-normalise each input feature (head=classify): raw pixels in [0, 1] train "
                               "an LSTM markedly slower than standardised ones"},
    },
}

SPECS = {
    "rnn": {
        "description": "Simple (Elman) RNN, many-to-one classifier",
        "paper": "Elman, Finding Structure in Time, Cognitive Science 1990",
        "params": 21_442,
    },
    "lstm": {
        "description": "LSTM, many-to-one classifier",
        "paper": "Hochreiter & Schmidhuber, Long Short-Term Memory, Neural Computation 1997",
        "params": 81_730,
    },
    "gru": {
        "description": "GRU, many-to-one classifier",
        "paper": "Cho et al., Learning Phrase Representations using RNN Encoder-Decoder for SMT, EMNLP 2014",
        "params": 62_018,
    },
    "birnn": {
        "description": "Bidirectional simple RNN, many-to-one classifier",
        "paper": "Schuster & Paliwal, Bidirectional Recurrent Neural Networks, 1997; Elman 1990",
        "params": 42_818,
        "options": {"bidirectional": {"default": True,
                                      "help": "read the sequence both ways and concatenate the states"}},
    },
    "bilstm": {
        "description": "Bidirectional LSTM, many-to-one classifier",
        "paper": "Schuster & Paliwal, Bidirectional Recurrent Neural Networks, 1997; Hochreiter & Schmidhuber 1997",
        "params": 163_394,
        "options": {"bidirectional": {"default": True,
                                      "help": "read the sequence both ways and concatenate the states"}},
    },
    "bigru": {
        "description": "Bidirectional GRU, many-to-one classifier",
        "paper": "Schuster & Paliwal, Bidirectional Recurrent Neural Networks, 1997; Cho et al. 2014",
        "params": 123_970,
        "options": {"bidirectional": {"default": True,
                                      "help": "read the sequence both ways and concatenate the states"}},
    },
}

_CELLS = {"rnn": ("simple_rnn", layers.SimpleRNN), "lstm": ("lstm", layers.LSTM), "gru": ("gru", layers.GRU)}
_LM_INPUT_SHAPE = (35,)


def _lm_inputs(input_shape, vocab_size):
    """Integer token ids ``(steps,)``, one-hot encoded by a frozen identity embedding (any length, even 1)."""
    shape = tuple(input_shape) if input_shape is not None else _LM_INPUT_SHAPE
    if len(shape) != 1:
        raise ValueError(f"head='lm' expects input_shape (steps,) of token ids. Received: input_shape={shape}")
    inputs = layers.Input(shape=shape, dtype="int32", name="input")
    x = layers.Embedding(vocab_size, vocab_size, embeddings_initializer=initializers.Identity(), trainable=False,
                         name="one_hot")(inputs)
    return inputs, x


def _token_inputs(shape, vocab_size, embedding_dim):
    """Integer token ids ``(steps,)``, 0 for padding, through a masking trainable embedding."""
    inputs = layers.Input(shape=shape, dtype="int32", name="input")
    return inputs, layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(inputs)


def _recurrent(x, cell, index, units, bidirectional, return_sequences):
    kind, layer_class = _CELLS[cell]
    layer = layer_class(units, return_sequences=return_sequences, name=f"{kind}{index}")
    if bidirectional:
        layer = layers.Bidirectional(layer, merge_mode="concat", name=f"bi{kind}{index}")
    return layer(x)


def _create_rnn(name, cell, input_shape, num_classes, units=128, num_layers=1, bidirectional=False, dropout=0.0,
                head="classify", vocab_size=28, embedding_dim=64, input_norm=True):
    spec = SPECS[name]
    if num_layers < 1:
        raise ValueError(f"num_layers must be at least 1. Received: num_layers={num_layers}")
    if head == "classify":
        if input_shape is not None and len(input_shape) == 1:
            inputs, x = _token_inputs(tuple(input_shape), vocab_size, embedding_dim)
        else:
            inputs, x = sequence_inputs(input_shape, default_shape=_base.spec_value(spec, MODEL_CARD, "input_shape"))
            if input_norm:
                x = layers.BatchNormalization(name="input_norm")(x)
        classes = _base.classes_for(spec, MODEL_CARD, num_classes)
    elif head == "lm":
        if bidirectional:
            raise ValueError(
                f"a bidirectional model sees the future of every step, so it cannot be a language model. "
                f"Received: head='lm', bidirectional=True (use {cell} with head='lm')"
            )
        if num_classes is not None and num_classes != vocab_size:
            raise ValueError(f"head='lm' predicts vocab_size={vocab_size} tokens. Received: num_classes={num_classes}")
        inputs, x = _lm_inputs(input_shape, vocab_size)
        classes = vocab_size
    else:
        raise ValueError(f"head must be 'classify' or 'lm'. Received: head={head!r}")
    for index in range(1, num_layers + 1):
        last = index == num_layers
        x = _recurrent(x, cell, index, units, bidirectional, return_sequences=head == "lm" or not last)
        if dropout and not last:
            x = layers.Dropout(dropout, name=f"dropout{index}")(x)
    outputs = classifier_head(x, classes)
    return _base.functional(inputs, outputs, name)


def rnn(*, input_shape=None, num_classes=None, **options):
    """Simple (Elman 1990) recurrent network."""
    return _create_rnn("rnn", "rnn", input_shape, num_classes, **options)


def lstm(*, input_shape=None, num_classes=None, **options):
    """Long short-term memory network (Hochreiter & Schmidhuber 1997)."""
    return _create_rnn("lstm", "lstm", input_shape, num_classes, **options)


def gru(*, input_shape=None, num_classes=None, **options):
    """Gated recurrent unit network (Cho et al. 2014)."""
    return _create_rnn("gru", "gru", input_shape, num_classes, **options)


def birnn(*, input_shape=None, num_classes=None, bidirectional=True, **options):
    """Bidirectional (Schuster & Paliwal 1997) simple RNN."""
    return _create_rnn("birnn", "rnn", input_shape, num_classes, bidirectional=bidirectional, **options)


def bilstm(*, input_shape=None, num_classes=None, bidirectional=True, **options):
    """Bidirectional (Schuster & Paliwal 1997) LSTM."""
    return _create_rnn("bilstm", "lstm", input_shape, num_classes, bidirectional=bidirectional, **options)


def bigru(*, input_shape=None, num_classes=None, bidirectional=True, **options):
    """Bidirectional (Schuster & Paliwal 1997) GRU."""
    return _create_rnn("bigru", "gru", input_shape, num_classes, bidirectional=bidirectional, **options)
