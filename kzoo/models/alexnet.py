"""AlexNet, as one tower (the two-GPU split of the paper merged into single layers).

A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet Classification with Deep Convolutional Neural Networks",
NeurIPS 2012. https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks

Five convolutions (96@11x11 stride 4, 256@5x5, 384@3x3, 384@3x3, 256@3x3), three overlapping 3x3/2 max
pools, and two 4096-unit fully connected layers with dropout 0.5. Local response normalisation is omitted (it
adds little and later work dropped it). The canonical input is 227x227x3, the size at which the stride-4
11x11 convolution without padding gives the paper's 55x55 maps.

The smallest side the network can process is 67 (the last pool then sees a 3x3 map); smaller inputs such as
28x28 MNIST digits are resized to 67x67 inside the graph. ``image_size`` resizes every input to a chosen side
instead (d2l trains Fashion-MNIST at 224).
"""

from keras import layers

from kzoo.layers import classifier_head, pool2d
from kzoo.models import _base

MIN_SIZE = 67

MODEL_CARD = {
    "family": "alexnet",
    "task": "image_classification",
    "input_shape": (227, 227, 3),
    "num_classes": 1000,
    "small_inputs": "inputs under 67x67 (the smallest the conv/pool stack can process) are resized to 67x67 "
                    "in the graph; image_size resizes every input to a chosen side",
    "recipe": {"optimizer": "adam", "lr": 0.0005, "batch_size": 128, "epochs": 5},
}

SPECS = {
    "alexnet": {
        "description": "AlexNet, one tower: conv 96@11x11/4, 256@5x5, 384, 384, 256@3x3, three max pools, "
                       "FC 4096-4096 with dropout 0.5 (no LRN)",
        "paper": "Krizhevsky, Sutskever, Hinton, ImageNet Classification with Deep Convolutional Neural "
                 "Networks, NeurIPS 2012",
        "params": 62_378_344,
        "arch": {"convs": [[96, 11, 4], [256, 5, 1], [384, 3, 1], [384, 3, 1], [256, 3, 1]],
                 "pool_after": [1, 2, 5], "fc_units": 4096},
        "options": {
            "dropout": {"default": 0.5, "min": 0.0, "max": 0.95,
                        "help": "dropout after each of the two 4096-unit layers"},
            "activation": {"default": "relu", "choices": ["relu", "tanh", "sigmoid"],
                           "help": "activation of every convolution and hidden fully connected layer (the paper: relu)"},
            "pool": {"default": "max", "choices": ["max", "avg", "stochastic"],
                     "help": "kind of the three overlapping 3x3/2 pools (the paper: max)"},
            "image_size": {"default": None, "type": "int", "min": 67,
                           "help": "resize every input to image_size x image_size in the graph "
                                   "(default: only inputs under 67x67, which are resized to 67x67)"},
        },
    },
}


def _conv_stack(x, convs, pool_after, activation="relu", pool="max"):
    """The five convolutions; ``conv1`` is unpadded, the others keep the size; 3x3/2 pools follow ``pool_after``."""
    for index, (filters, kernel, stride) in enumerate(convs, start=1):
        padding = "valid" if index == 1 else "same"
        x = layers.Conv2D(filters, kernel, strides=stride, padding=padding, activation=activation,
                          name=f"conv{index}")(x)
        if index in pool_after:
            x = pool2d(pool, 3, strides=2, name=f"pool{index}")(x)
    return x


def _fc(x, units, dropout, name, activation="relu"):
    """A fully connected layer (ReLU by default) followed by dropout."""
    x = layers.Dense(units, activation=activation, name=name)(x)
    return layers.Dropout(dropout, name=f"{name}_dropout")(x)


def _create_alexnet(name, input_shape, num_classes, dropout=0.5, activation="relu", pool="max", image_size=None):
    spec = SPECS[name]
    arch = spec["arch"]
    inputs, x = _base.inputs_for(spec, MODEL_CARD, input_shape, min_size=MIN_SIZE, image_size=image_size)
    x = _conv_stack(x, arch["convs"], arch["pool_after"], activation, pool)
    x = layers.Flatten(name="flatten")(x)
    x = _fc(x, arch["fc_units"], dropout, name="fc1", activation=activation)
    x = _fc(x, arch["fc_units"], dropout, name="fc2", activation=activation)
    outputs = classifier_head(x, _base.classes_for(spec, MODEL_CARD, num_classes))
    return _base.functional(inputs, outputs, name)


def alexnet(*, input_shape=None, num_classes=None, **options):
    """AlexNet (Krizhevsky et al. 2012), single tower, without local response normalisation."""
    return _create_alexnet("alexnet", input_shape, num_classes, **options)
