"""Siamese network: one encoder shared by two images, and the Euclidean distance between their embeddings.

J. Bromley, I. Guyon, Y. LeCun, E. Sackinger, R. Shah, "Signature Verification using a Siamese Time Delay
Neural Network", NIPS 1993; trained with the contrastive loss of R. Hadsell, S. Chopra, Y. LeCun,
"Dimensionality Reduction by Learning an Invariant Mapping", CVPR 2006 (``kzoo.layers.ContrastiveLoss``).

The model takes two inputs, ``left`` and ``right``, and outputs their distance ``(batch, 1)`` (layer
``distance``); the labels are 1 for a similar pair and 0 for a dissimilar one. The encoder is a nested
``keras.Model`` named ``encoder`` (``model.get_layer("encoder")`` maps one image to its embedding), either the
default small CNN or any registered image classifier, whose ``logits`` layer (``embedding_dim`` units) becomes
the embedding. Inputs under 10x10 are resized up to 10x10 for the small CNN; a backbone handles its own sizes.
"""

import keras
from keras import layers

from kzoo.layers import EuclideanDistance, image_inputs
from kzoo.models import _base

MODEL_CARD = {
    "family": "siamese",
    "task": "metric_learning",
    "input_shape": (28, 28, 1),
    "num_classes": None,
    "paper": "Bromley et al., Signature Verification using a Siamese Time Delay Neural Network, NIPS 1993",
    "small_inputs": "small_cnn: inputs under 10x10 are resized to 10x10; a backbone encoder resizes as it does alone",
    "recipe": {"optimizer": "adam", "lr": 0.001, "batch_size": 128, "epochs": 5, "loss": "contrastive",
               "margin": 1.0},
    "options": {
        "encoder": {"default": "small_cnn", "type": "str",
                    "help": "small_cnn, or any registered image classifier (e.g. lenet5, resnet18) whose logits "
                            "layer becomes the embedding"},
        "embedding_dim": {"default": 64, "min": 1, "help": "size of the embedding the distance is measured in"},
    },
}

SPECS = {
    "siamese": {
        "description": "Siamese network: shared encoder (small CNN or any image backbone), Euclidean distance",
        "params": 232_000,
    },
}

_SMALL_CNN_MIN_SIZE = 10  # two valid 3x3 convolutions and two 2x2 poolings leave at least 1x1


def _small_cnn(input_shape, embedding_dim):
    """conv32 3x3, max pool, conv64 3x3, max pool, dense 128, dense ``embedding_dim`` (linear)."""
    inputs, x = image_inputs(input_shape, default_shape=MODEL_CARD["input_shape"], min_size=_SMALL_CNN_MIN_SIZE,
                             name="image")
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="fc")(x)
    embedding = layers.Dense(embedding_dim, name="embedding")(x)
    return keras.Model(inputs, embedding, name="encoder")


def _create_siamese(name, input_shape, num_classes, encoder="small_cnn", embedding_dim=64):
    spec = SPECS[name]
    if num_classes is not None:
        raise ValueError(f"{name} outputs a distance, not classes; set embedding_dim instead. "
                         f"Received: num_classes={num_classes}")
    if encoder == "small_cnn":
        shared = _small_cnn(input_shape, embedding_dim)
    else:
        shape = input_shape if input_shape is not None else _base.spec_value(spec, MODEL_CARD, "input_shape")
        shared = _base.image_backbone(encoder, shape, embedding_dim)
    image_shape = tuple(shared.inputs[0].shape[1:])
    left = layers.Input(shape=image_shape, name="left")
    right = layers.Input(shape=image_shape, name="right")
    distance = EuclideanDistance(dtype="float32", name="distance")([shared(left), shared(right)])
    return _base.functional([left, right], distance, name)


def siamese(*, input_shape=None, num_classes=None, **options):
    """A Siamese network over two images ``left`` and ``right``; output their distance ``(batch, 1)``.

    ``num_classes`` must stay ``None`` (the model outputs a distance); ``encoder`` and ``embedding_dim`` are
    described in ``MODEL_CARD``. The shared embedding model is ``model.get_layer("encoder")``.
    """
    return _create_siamese("siamese", input_shape, num_classes, **options)
