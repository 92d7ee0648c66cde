"""Multilayer perceptron: flattened input, fully connected hidden layers, softmax output.

The notes: hidden layers with a nonlinear activation make a multilayer network more than one linear map.
D. E. Rumelhart, G. E. Hinton, R. J. Williams, "Learning representations by back-propagating errors",
Nature 1986.
"""

from keras import layers

from kzoo.layers import classifier_head
from kzoo.models import _base

MODEL_CARD = {
    "family": "mlp",
    "task": "image_classification",
    "input_shape": (28, 28, 1),
    "num_classes": 10,
    "paper": "Rumelhart, Hinton, Williams, Learning representations by back-propagating errors, Nature 1986",
    "small_inputs": "any input size: the input is flattened",
    "recipe": {"optimizer": "adam", "lr": 0.001, "batch_size": 64, "epochs": 5},
}

SPECS = {
    "mlp": {
        "description": "Multilayer perceptron with configurable hidden sizes, activation and dropout",
        "params": 235_146,
        "options": {
            "hidden_sizes": {"default": (256, 128), "type": "ints", "min": 1,
                             "help": "width of each hidden layer, e.g. 512,256,128"},
            "activation": {"default": "relu", "choices": ["relu", "tanh", "sigmoid"],
                           "help": "activation of the hidden layers"},
            "dropout": {"default": 0.0, "min": 0.0, "max": 0.95, "help": "dropout after each hidden layer"},
        },
    },
}


def _create_mlp(name, input_shape, num_classes, hidden_sizes=(256, 128), activation="relu", dropout=0.0):
    spec = SPECS[name]
    shape = input_shape if input_shape is not None else MODEL_CARD["input_shape"]
    inputs = layers.Input(shape=tuple(shape), name="input")
    x = layers.Flatten(name="flatten")(inputs)
    for index, width in enumerate(hidden_sizes, start=1):
        x = layers.Dense(width, activation=activation, name=f"hidden{index}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"hidden{index}_dropout")(x)
    outputs = classifier_head(x, _base.classes_for(spec, MODEL_CARD, num_classes))
    return _base.functional(inputs, outputs, name)


def mlp(*, input_shape=None, num_classes=None, **options):
    """A multilayer perceptron (``hidden_sizes=(256, 128)``, ReLU by default)."""
    return _create_mlp("mlp", input_shape, num_classes, **options)
