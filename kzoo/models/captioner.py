"""Image captioning (the notes' one-to-many RNN): an image encoder whose features start an LSTM decoder.

O. Vinyals, A. Toshev, S. Bengio, D. Erhan, "Show and Tell: A Neural Image Caption Generator", CVPR 2015.
https://arxiv.org/abs/1411.4555

Two inputs: ``image`` (``input_shape``, default 28x112x1: up to four MNIST digits side by side) and
``caption_in``, the caption's token ids shifted right behind ``<bos>`` (teacher forcing), ``(caption_steps,)``
with 0 as padding (masked). The output is a softmax over ``num_classes`` caption tokens at every step,
``(batch, caption_steps, num_classes)``.

The encoder is a nested ``keras.Model`` named ``encoder`` mapping an image to ``units`` features: a small CNN
by default, or any registered image classifier cut at its ``logits`` layer (``encoder=NAME``, as the Siamese
network does). Show and Tell feeds the image embedding as the LSTM's first input; here the features, through
one dense layer each, are the LSTM's initial ``h`` and ``c`` (the "init-inject" variant), which keeps the
caption and its steps aligned and the decoder a plain Keras LSTM layer.
"""

import keras
from keras import layers

from kzoo.layers import classifier_head, image_inputs
from kzoo.models import _base

MODEL_CARD = {
    "family": "captioner",
    "task": "captioning",
    "input_shape": (28, 112, 1),
    "num_classes": 14,
    "paper": "Vinyals et al., Show and Tell: A Neural Image Caption Generator, CVPR 2015",
    "small_inputs": "small_cnn: inputs under 2 ** stages (8x8) are resized to that; a backbone encoder resizes as "
                    "it does alone",
    "recipe": {"data": "digit_captions", "vocab": "words", "optimizer": "adam", "lr": 0.002, "batch_size": 64,
               "epochs": 12, "schedule": "cosine", "clipnorm": 1.0},
    "options": {
        "encoder": {"default": "small_cnn", "type": "str",
                    "help": "small_cnn, or any registered image classifier (e.g. lenet5, resnet18) whose logits "
                            "layer becomes the image features"},
        "filters": {"default": (8, 16, 32), "type": "ints", "min": 1,
                    "help": "small_cnn: filters of its conv-ReLU-pool stages, e.g. 16,32,32"},
        "units": {"default": 256, "min": 1, "help": "image features and LSTM hidden units"},
        "embedding_dim": {"default": 64, "min": 1, "help": "size of the caption token embedding"},
        "caption_steps": {"default": 5, "min": 1, "help": "caption tokens per example (with <eos>)"},
        "dropout": {"default": 0.3, "min": 0.0, "max": 0.95, "help": "dropout on the features and before the softmax"},
    },
}

SPECS = {
    "captioner": {
        "description": "Show and Tell captioner: image encoder (small CNN or any image backbone), LSTM decoder",
        "params": 814_990,
    },
}

def _small_cnn(input_shape, units, filters):
    """Conv-ReLU-pool stages (``filters``, 3x3 same), flattened, then dense ``units`` (ReLU)."""
    inputs, x = image_inputs(input_shape, default_shape=MODEL_CARD["input_shape"], min_size=2 ** len(filters),
                             name="image")
    for index, width in enumerate(filters, start=1):
        x = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{index}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    features = layers.Dense(units, activation="relu", name="features")(x)
    return keras.Model(inputs, features, name="encoder")


def _create_captioner(name, input_shape, num_classes, encoder="small_cnn", filters=(8, 16, 32), units=256,
                      embedding_dim=64, caption_steps=5, dropout=0.3):
    spec = SPECS[name]
    vocab = _base.classes_for(spec, MODEL_CARD, num_classes)
    if encoder == "small_cnn":
        image_model = _small_cnn(input_shape, units, tuple(filters))
    else:
        shape = input_shape if input_shape is not None else _base.spec_value(spec, MODEL_CARD, "input_shape")
        image_model = _base.image_backbone(encoder, shape, units)
    image = layers.Input(shape=tuple(image_model.inputs[0].shape[1:]), name="image")
    caption_in = layers.Input(shape=(caption_steps,), dtype="int32", name="caption_in")
    features = image_model(image)
    if dropout:
        features = layers.Dropout(dropout, name="features_dropout")(features)
    state = [layers.Dense(units, activation="tanh", name="init_h")(features),
             layers.Dense(units, name="init_c")(features)]
    words = layers.Embedding(vocab, embedding_dim, mask_zero=True, name="caption_embedding")(caption_in)
    decoded = layers.LSTM(units, return_sequences=True, name="decoder_lstm")(words, initial_state=state)
    outputs = classifier_head(decoded, vocab, dropout=dropout)
    return _base.functional([image, caption_in], outputs, name)


def captioner(*, input_shape=None, num_classes=None, **options):
    """Show and Tell (Vinyals et al. 2015) captioner; ``num_classes`` is the caption vocabulary.

    The image encoder is ``model.get_layer("encoder")``.
    """
    return _create_captioner("captioner", input_shape, num_classes, **options)
