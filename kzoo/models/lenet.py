"""LeNet-5 and the notes' two-convolution MNIST network.

LeNet-5: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 1998. http://yann.lecun.com/exdb/publis/pdf/lecun-98.pdf

The classic configuration (sigmoid activations, average pooling) is ``activation="sigmoid", pool="avg"``;
the default uses ReLU and max pooling, which train far faster. Inputs smaller than 32x32 (MNIST's 28x28) get
a zero border up to 32x32, which is how LeCun fed 28x28 digits to the 32x32 network.
"""

from keras import layers

from kzoo.layers import classifier_head, pool2d
from kzoo.models import _base

MODEL_CARD = {
    "family": "lenet",
    "task": "image_classification",
    "input_shape": (32, 32, 1),
    "num_classes": 10,
    "small_inputs": "inputs under 32x32 are zero-padded to 32x32 (LeCun's own treatment of 28x28 MNIST)",
    "recipe": {"optimizer": "adam", "lr": 0.002, "batch_size": 16, "epochs": 2, "schedule": "cosine", "val_split": 0.05},
}

SPECS = {
    "lenet5": {
        "description": "LeNet-5: C1 6@5x5, S2, C3 16@5x5, S4, C5 120, F6 84, output (LeCun et al. 1998)",
        "paper": "LeCun et al., Gradient-Based Learning Applied to Document Recognition, 1998",
        "params": 61_706,
        "options": {
            "activation": {"default": "relu", "choices": ["relu", "tanh", "sigmoid"],
                           "help": "activation of C1, C3, C5 and F6 (classic: sigmoid)"},
            "pool": {"default": "max", "choices": ["max", "avg", "stochastic"],
                     "help": "pooling of S2 and S4 (classic: avg)"},
            "padding": {"default": "valid", "choices": ["valid", "same"],
                        "help": "padding of C1 and C3 (the paper: valid)"},
        },
    },
    "convnet2": {
        "description": "The notes' two-convolution MNIST net: conv32-5x5, pool, conv64-5x5, pool, FC1000, dropout 0.5",
        "paper": "Architecture notes, LeNet section (PyTorch example); after LeCun et al. 1998",
        "input_shape": (28, 28, 1),
        "params": 3_199_106,
        "small_inputs": "native 28x28; any size works (the FC layer adapts to the input size)",
        "recipe": {"optimizer": "adam", "lr": 0.001, "batch_size": 64, "epochs": 2},
        "options": {
            "dropout": {"default": 0.5, "min": 0.0, "max": 0.95, "help": "dropout before the output layer"},
            "pool": {"default": "max", "choices": ["max", "avg", "stochastic"], "help": "pooling after each conv"},
            "activation": {"default": "relu", "choices": ["relu", "tanh", "sigmoid"],
                           "help": "activation of the two convolutions and the FC layer"},
        },
    },
}


def _create_lenet5(name, input_shape, num_classes, activation="relu", pool="max", padding="valid"):
    spec = SPECS[name]
    inputs, x = _base.inputs_for(spec, MODEL_CARD, input_shape)
    height, width = inputs.shape[1], inputs.shape[2]
    if height < 32 or width < 32:
        pad_h, pad_w = max(0, 32 - height), max(0, 32 - width)
        x = layers.ZeroPadding2D(((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)),
                                 name="pad_to_32")(x)
    x = layers.Conv2D(6, 5, padding=padding, activation=activation, name="c1_conv")(x)
    x = pool2d(pool, 2, name="s2_pool")(x)
    x = layers.Conv2D(16, 5, padding=padding, activation=activation, name="c3_conv")(x)
    x = pool2d(pool, 2, name="s4_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(120, activation=activation, name="c5_dense")(x)
    x = layers.Dense(84, activation=activation, name="f6_dense")(x)
    outputs = classifier_head(x, _base.classes_for(spec, MODEL_CARD, num_classes))
    return _base.functional(inputs, outputs, name)


def _create_convnet2(name, input_shape, num_classes, dropout=0.5, pool="max", activation="relu"):
    spec = SPECS[name]
    inputs, x = _base.inputs_for(spec, MODEL_CARD, input_shape)
    for index, filters in enumerate((32, 64), start=1):
        x = layers.Conv2D(filters, 5, padding="same", activation=activation, name=f"conv{index}")(x)
        x = pool2d(pool, 2, name=f"pool{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(1000, name="fc1")(x)
    x = layers.Dropout(dropout, name="fc1_dropout")(x)
    x = layers.Activation(activation, name="fc1_relu")(x)  # name kept for saved weights
    outputs = classifier_head(x, _base.classes_for(spec, MODEL_CARD, num_classes))
    return _base.functional(inputs, outputs, name)


def lenet5(*, input_shape=None, num_classes=None, **options):
    """LeNet-5 (LeCun et al. 1998); ``activation="sigmoid", pool="avg"`` is the classic network."""
    return _create_lenet5("lenet5", input_shape, num_classes, **options)


def convnet2(*, input_shape=None, num_classes=None, **options):
    """The notes' two-convolution network for MNIST (conv32, conv64, FC1000 with dropout 0.5)."""
    return _create_convnet2("convnet2", input_shape, num_classes, **options)
