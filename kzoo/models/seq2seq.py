"""RNN encoder-decoder (the notes' many-to-many model, machine translation), with or without attention.

Papers:

* I. Sutskever, O. Vinyals, Q. V. Le, "Sequence to Sequence Learning with Neural Networks", NIPS 2014.
  https://arxiv.org/abs/1409.3215
* K. Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for Statistical Machine
  Translation", EMNLP 2014. https://arxiv.org/abs/1406.1078 (d2l section 10.7)
* M.-T. Luong, H. Pham, C. D. Manning, "Effective Approaches to Attention-based Neural Machine Translation",
  EMNLP 2015. https://arxiv.org/abs/1508.04025
* D. Bahdanau, K. Cho, Y. Bengio, "Neural Machine Translation by Jointly Learning to Align and Translate",
  ICLR 2015. https://arxiv.org/abs/1409.0473

Two inputs, both integer token ids with 0 as padding: ``source`` ``(source_steps,)`` and ``target_in``
``(target_steps,)``, the target sentence shifted right behind ``<bos>`` (teacher forcing); ``input_shape`` is
``(source_steps, target_steps)``. The output is a softmax over ``num_classes`` target tokens at every target
step, ``(batch, target_steps, num_classes)``. Token 0 is masked in both embeddings (``mask_zero``), so the
encoder's final state is that of the last real source token and padding never receives attention.

The encoder is ``num_layers`` stacked GRU or LSTM layers (``cell``), optionally bidirectional (the two
directions' states are concatenated, so the decoder is twice as wide); decoder layer ``i`` starts from the
final state of encoder layer ``i``. ``seq2seq_attention`` adds Luong et al.'s global attention *after* the
decoder RNN: every decoder output attends over all encoder outputs (``attention=luong``: the multiplicative
"general" score ``h_t^T W h_s``; ``attention=additive``: Bahdanau's additive score ``v^T tanh(W h_t + U h_s)``),
and ``tanh(W_c [context; h_t])`` feeds the softmax. The recurrent layers thus stay plain Keras GRU/LSTM layers
with the defaults that allow the fused (cuDNN) kernels; the attention layer is named ``attention`` and returns
its alignment scores too (``kzoo.tasks`` draws them).
"""

from keras import layers

from kzoo.layers import classifier_head
from kzoo.models import _base

MODEL_CARD = {
    "family": "seq2seq",
    "task": "translation",
    "input_shape": (16, 16),
    "num_classes": 4000,
    "small_inputs": "input_shape (source_steps, target_steps): any token-id lengths",
    # fra_eng's pairs of at most 6 tokens a side (34,675 of 68,424; d2l trains on short pairs too), one
    # bidirectional 256-unit encoder layer (held-out BLEU 41 against 27 one-way, docs/accuracy.md), batches of 128,
    # 7 epochs: sized for under ten minutes of two CPU cores (issue 12)
    "recipe": {"data": "fra_eng", "seq_len": 7, "vocab": "words", "optimizer": "adam", "lr": 0.005, "batch_size": 128,
               "epochs": 7, "schedule": "cosine", "clipnorm": 1.0,
               "options": {"num_layers": 1, "bidirectional_encoder": True}},
    "options": {
        "cell": {"default": "gru", "choices": ["gru", "lstm"], "help": "recurrent cell of encoder and decoder"},
        "units": {"default": 256, "min": 1, "help": "hidden units of each encoder layer (per direction)"},
        "num_layers": {"default": 2, "min": 1, "help": "stacked layers in the encoder and in the decoder"},
        "embedding_dim": {"default": 128, "min": 1, "help": "size of the source and target token embeddings"},
        "bidirectional_encoder": {"default": False,
                                  "help": "read the source both ways; the decoder is twice as wide"},
        "dropout": {"default": 0.2, "min": 0.0, "max": 0.95,
                    "help": "dropout on the embeddings, between stacked layers and before the softmax"},
        "source_vocab": {"default": 4000, "min": 2, "help": "source tokens (ids below it; 0 is padding)"},
    },
}

SPECS = {
    "seq2seq": {
        "description": "RNN encoder-decoder (GRU or LSTM), decoder started from the encoder state",
        "paper": "Sutskever et al., Sequence to Sequence Learning with Neural Networks, NIPS 2014; Cho et al. 2014",
        "params": 3_434_400,
    },
    "seq2seq_attention": {
        "description": "RNN encoder-decoder with Luong global attention after the decoder RNN",
        "paper": "Luong et al., Effective Approaches to Attention-based Neural Machine Translation, EMNLP 2015",
        "params": 3_631_264,
        "options": {"attention": {"default": "luong", "choices": ["luong", "additive"],
                                  "help": "luong: multiplicative 'general' score; additive: Bahdanau's score"}},
    },
}

ATTENTION_KINDS = ("luong", "additive")
_CELLS = {"gru": layers.GRU, "lstm": layers.LSTM}


def _encoder(x, cell, units, num_layers, bidirectional, dropout):
    """Stacked encoder layers; returns the last layer's outputs and every layer's final state (a list each)."""
    states = []
    for index in range(1, num_layers + 1):
        layer = _CELLS[cell](units, return_sequences=True, return_state=True, name=f"encoder_{cell}{index}")
        if bidirectional:
            outputs = layers.Bidirectional(layer, merge_mode="concat", name=f"encoder_bi{cell}{index}")(x)
            x, forward, backward = outputs[0], outputs[1:len(outputs) // 2 + 1], outputs[len(outputs) // 2 + 1:]
            state = [layers.Concatenate(name=f"encoder_state{index}_{part}")([f, b])
                     for part, (f, b) in enumerate(zip(forward, backward))]
        else:
            x, *state = layer(x)
        states.append(state)
        if dropout and index < num_layers:
            x = layers.Dropout(dropout, name=f"encoder_dropout{index}")(x)
    return x, states


def _decoder(x, cell, units, states, dropout):
    for index, state in enumerate(states, start=1):
        layer = _CELLS[cell](units, return_sequences=True, name=f"decoder_{cell}{index}")
        x = layer(x, initial_state=state)
        if dropout and index < len(states):
            x = layers.Dropout(dropout, name=f"decoder_dropout{index}")(x)
    return x


def _attend(decoded, encoded, kind, units):
    """Luong global attention over the encoder outputs, then the attentional hidden state ``tanh(W_c[c; h])``."""
    if kind == "luong":
        keys = layers.Dense(units, use_bias=False, name="attention_key")(encoded)  # the "general" score's W
        context, _ = layers.Attention(name="attention")([decoded, encoded, keys], return_attention_scores=True)
    else:
        context, _ = layers.AdditiveAttention(name="attention")([decoded, encoded], return_attention_scores=True)
    joined = layers.Concatenate(name="attention_join")([context, decoded])
    return layers.Dense(units, activation="tanh", name="attentional_hidden")(joined)


def _create_attention_seq2seq(name, input_shape, num_classes, attention="luong", **options):
    if attention not in ATTENTION_KINDS:
        raise ValueError(f"attention must be one of {', '.join(ATTENTION_KINDS)}. Received: attention={attention!r}")
    return _create_seq2seq(name, input_shape, num_classes, attention_kind=attention, **options)


def _create_seq2seq(name, input_shape, num_classes, cell="gru", units=256, num_layers=2, embedding_dim=128,
                    bidirectional_encoder=False, dropout=0.2, source_vocab=4000, attention_kind=None):
    spec = SPECS[name]
    if cell not in _CELLS:
        raise ValueError(f"cell must be 'gru' or 'lstm'. Received: cell={cell!r}")
    if num_layers < 1:
        raise ValueError(f"num_layers must be at least 1. Received: num_layers={num_layers}")
    shape = tuple(input_shape) if input_shape is not None else _base.spec_value(spec, MODEL_CARD, "input_shape")
    if len(shape) != 2:
        raise ValueError(f"{name} expects input_shape (source_steps, target_steps). Received: input_shape={shape}")
    target_vocab = _base.classes_for(spec, MODEL_CARD, num_classes)
    source = layers.Input(shape=(shape[0],), dtype="int32", name="source")
    target_in = layers.Input(shape=(shape[1],), dtype="int32", name="target_in")

    x = layers.Embedding(source_vocab, embedding_dim, mask_zero=True, name="source_embedding")(source)
    y = layers.Embedding(target_vocab, embedding_dim, mask_zero=True, name="target_embedding")(target_in)
    if dropout:
        x = layers.Dropout(dropout, name="source_dropout")(x)
        y = layers.Dropout(dropout, name="target_dropout")(y)
    encoded, states = _encoder(x, cell, units, num_layers, bidirectional_encoder, dropout)
    width = units * (2 if bidirectional_encoder else 1)
    decoded = _decoder(y, cell, width, states, dropout)
    if attention_kind is not None:
        decoded = _attend(decoded, encoded, attention_kind, width)
    outputs = classifier_head(decoded, target_vocab, dropout=dropout)
    return _base.functional([source, target_in], outputs, name)


def seq2seq(*, input_shape=None, num_classes=None, **options):
    """RNN encoder-decoder (Sutskever et al. 2014, Cho et al. 2014); ``num_classes`` is the target vocabulary."""
    return _create_seq2seq("seq2seq", input_shape, num_classes, **options)


def seq2seq_attention(*, input_shape=None, num_classes=None, attention="luong", **options):
    """RNN encoder-decoder with global attention (Luong et al. 2015; ``attention="additive"``: Bahdanau's score)."""
    return _create_attention_seq2seq("seq2seq_attention", input_shape, num_classes, attention=attention, **options)
