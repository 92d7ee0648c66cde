"""VGG-11/13/16/19 (configurations A, B, D, E), with and without batch normalisation.

K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", ICLR 2015.
https://arxiv.org/abs/1409.1556
The ``_bn`` variants add batch normalisation after every convolution: S. Ioffe, C. Szegedy, "Batch
Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift", ICML 2015.
https://arxiv.org/abs/1502.03167
Their BatchNorm uses torchvision's epsilon 1e-5 and momentum 0.1 (Keras 0.9), so torchvision's published
weights compute what they compute in torchvision (Keras' defaults, 1e-3 and 0.99, which kzoo used before,
gave 0.9% relative logit difference with the same weights, and moving statistics that follow the batches 10x
more slowly in training).

Each variant's layer list (``SPECS[name]["arch"]["layers"]``, as in timm: an integer is a 3x3 same-padded
convolution with that many channels, ``"M"`` a 2x2/2 pool) is followed by FC 4096-4096 with dropout 0.5 and
the classifier. At the canonical 224x224 the classifier flattens 7x7x512; at other sizes the flatten size
follows the input.

The five pools need a side of at least 32; smaller inputs (28x28 MNIST) are resized to 32x32 inside the graph,
and ``image_size`` resizes every input to a chosen side. The full network at 224x224 is far too slow for a
CPU: for 28x28 data use e.g. ``width_multiplier=0.25, fc_units=512`` (the input is resized to 32x32), or
d2l's setting ``width_multiplier=0.25, image_size=224`` on a GPU.
"""

from keras import layers

from kzoo.layers import classifier_head, normalized_inputs, pool2d
from kzoo.models import _base

MIN_SIZE = 32

MODEL_CARD = {
    "family": "vgg",
    "task": "image_classification",
    "input_shape": (224, 224, 3),
    "num_classes": 1000,
    "paper": "Simonyan, Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition, ICLR 2015",
    "small_inputs": "inputs under 32x32 (the smallest side five pools can halve) are resized to 32x32 in the "
                    "graph; image_size resizes every input to a chosen side",
    "options": {
        "width_multiplier": {"default": 1.0, "min": 0.01,
                             "help": "scale every convolution's channels (at least 1 channel each); "
                                     "d2l's small VGG uses 0.25"},
        "fc_units": {"default": 4096, "min": 1, "help": "units of the two fully connected hidden layers"},
        "dropout": {"default": 0.5, "min": 0.0, "max": 0.95,
                    "help": "dropout after each fully connected hidden layer"},
        "pool": {"default": "max", "choices": ["max", "avg", "stochastic"],
                 "help": "kind of the five 2x2/2 pools (the paper: max)"},
        "activation": {"default": "relu", "choices": ["relu", "tanh", "sigmoid"],
                       "help": "activation of every convolution and hidden fully connected layer (the paper: relu)"},
        "image_size": {"default": None, "type": "int", "min": 32,
                       "help": "resize every input to image_size x image_size in the graph "
                               "(default: only inputs under 32x32, which are resized to 32x32)"},
        "input_normalization": {"default": "none", "choices": ["none", "imagenet", "caffe"],
                                "help": "normalise [0, 1] inputs in the graph as published weights expect "
                                        "(imagenet: torchvision's mean/std; caffe: keras.applications VGG's "
                                        "BGR mean); --weights sets it"},
    },
    "recipe": {"optimizer": "adam", "lr": 0.0001, "batch_size": 128, "epochs": 5},
}

SPECS = {
    "vgg11": {
        "description": "VGG-11 (configuration A): 8 conv 3x3 + 3 FC",
        "params": 132_863_336,
        "arch": {"layers": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"], "batch_norm": False},
        "weights": {
            "torchvision": {"file": "vgg11-8a719046.pth",
                            "url": "https://download.pytorch.org/models/vgg11-8a719046.pth",
                            "sha256": "8a719046", "top1": 69.02, "preprocessing": "imagenet"},
        },
    },
    "vgg11_bn": {
        "description": "VGG-11 (configuration A) with batch normalisation after every convolution",
        "paper": "Simonyan, Zisserman, ICLR 2015; batch normalisation: Ioffe, Szegedy, ICML 2015",
        "params": 132_868_840,
        "arch": {"layers": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"], "batch_norm": True},
        "weights": {
            "torchvision": {"file": "vgg11_bn-6002323d.pth",
                            "url": "https://download.pytorch.org/models/vgg11_bn-6002323d.pth",
                            "sha256": "6002323d", "top1": 70.37, "preprocessing": "imagenet"},
        },
    },
    "vgg13": {
        "description": "VGG-13 (configuration B): 10 conv 3x3 + 3 FC",
        "params": 133_047_848,
        "arch": {"layers": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
                 "batch_norm": False},
        "weights": {
            "torchvision": {"file": "vgg13-19584684.pth",
                            "url": "https://download.pytorch.org/models/vgg13-19584684.pth",
                            "sha256": "19584684", "top1": 69.928, "preprocessing": "imagenet"},
        },
    },
    "vgg13_bn": {
        "description": "VGG-13 (configuration B) with batch normalisation after every convolution",
        "paper": "Simonyan, Zisserman, ICLR 2015; batch normalisation: Ioffe, Szegedy, ICML 2015",
        "params": 133_053_736,
        "arch": {"layers": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
                 "batch_norm": True},
        "weights": {
            "torchvision": {"file": "vgg13_bn-abd245e5.pth",
                            "url": "https://download.pytorch.org/models/vgg13_bn-abd245e5.pth",
                            "sha256": "abd245e5", "top1": 71.586, "preprocessing": "imagenet"},
        },
    },
    "vgg16": {
        "description": "VGG-16 (configuration D): 13 conv 3x3 + 3 FC",
        "params": 138_357_544,
        "arch": {"layers": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
                 "batch_norm": False},
        "weights": {
            "torchvision": {"file": "vgg16-397923af.pth",
                            "url": "https://download.pytorch.org/models/vgg16-397923af.pth",
                            "sha256": "397923af", "top1": 71.592, "preprocessing": "imagenet"},
            "imagenet": {"file": "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                         "url": "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                         "md5": "64373286793e3c8b2b4e3219cbf3544b", "top1": 71.3, "preprocessing": "caffe"},
        },
    },
    "vgg16_bn": {
        "description": "VGG-16 (configuration D) with batch normalisation after every convolution",
        "paper": "Simonyan, Zisserman, ICLR 2015; batch normalisation: Ioffe, Szegedy, ICML 2015",
        "params": 138_365_992,
        "arch": {"layers": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
                 "batch_norm": True},
        "weights": {
            "torchvision": {"file": "vgg16_bn-6c64b313.pth",
                            "url": "https://download.pytorch.org/models/vgg16_bn-6c64b313.pth",
                            "sha256": "6c64b313", "top1": 73.36, "preprocessing": "imagenet"},
        },
    },
    "vgg19": {
        "description": "VGG-19 (configuration E): 16 conv 3x3 + 3 FC",
        "params": 143_667_240,
        "arch": {"layers": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                            512, 512, 512, 512, "M"],
                 "batch_norm": False},
        "weights": {
            "torchvision": {"file": "vgg19-dcbb9e9d.pth",
                            "url": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
                            "sha256": "dcbb9e9d", "top1": 72.376, "preprocessing": "imagenet"},
            "imagenet": {"file": "vgg19_weights_tf_dim_ordering_tf_kernels.h5",
                         "url": "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5",
                         "md5": "cbe5617147190e668d6c5d5026f83318", "top1": 71.3, "preprocessing": "caffe"},
        },
    },
    "vgg19_bn": {
        "description": "VGG-19 (configuration E) with batch normalisation after every convolution",
        "paper": "Simonyan, Zisserman, ICLR 2015; batch normalisation: Ioffe, Szegedy, ICML 2015",
        "params": 143_678_248,
        "arch": {"layers": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                            512, 512, 512, 512, "M"],
                 "batch_norm": True},
        "weights": {
            "torchvision": {"file": "vgg19_bn-c79401a0.pth",
                            "url": "https://download.pytorch.org/models/vgg19_bn-c79401a0.pth",
                            "sha256": "c79401a0", "top1": 74.218, "preprocessing": "imagenet"},
        },
    },
}


def _scaled(channels, width_multiplier):
    """``channels`` scaled by ``width_multiplier``, rounded, at least 1."""
    return max(1, round(channels * width_multiplier))


def _features(x, layer_list, batch_norm, width_multiplier, pool, activation="relu"):
    """The convolution stages: ``block{b}_conv{c}`` (+ ``block{b}_bn{c}``), each stage ending in ``block{b}_pool``."""
    block, conv = 1, 1
    for item in layer_list:
        if item == "M":
            x = pool2d(pool, 2, name=f"block{block}_pool")(x)
            block, conv = block + 1, 1
            continue
        x = layers.Conv2D(_scaled(item, width_multiplier), 3, padding="same", name=f"block{block}_conv{conv}")(x)
        if batch_norm:
            x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"block{block}_bn{conv}")(x)
        x = layers.Activation(activation, name=f"block{block}_relu{conv}")(x)  # name kept for saved weights
        conv += 1
    return x


def _fc(x, units, dropout, name, activation="relu"):
    """A fully connected layer (ReLU by default) followed by dropout."""
    x = layers.Dense(units, activation=activation, name=name)(x)
    return layers.Dropout(dropout, name=f"{name}_dropout")(x)


def _create_vgg(name, input_shape, num_classes, width_multiplier=1.0, fc_units=4096, dropout=0.5, pool="max",
                activation="relu", image_size=None, input_normalization="none"):
    spec = SPECS[name]
    arch = spec["arch"]
    inputs, x = _base.inputs_for(spec, MODEL_CARD, input_shape, min_size=MIN_SIZE, image_size=image_size)
    x = normalized_inputs(x, input_normalization)
    x = _features(x, arch["layers"], arch["batch_norm"], width_multiplier, pool, activation)
    x = layers.Flatten(name="flatten")(x)
    x = _fc(x, fc_units, dropout, name="fc1", activation=activation)
    x = _fc(x, fc_units, dropout, name="fc2", activation=activation)
    outputs = classifier_head(x, _base.classes_for(spec, MODEL_CARD, num_classes))
    return _base.functional(inputs, outputs, name)


def vgg11(*, input_shape=None, num_classes=None, **options):
    """VGG-11, configuration A (Simonyan & Zisserman 2015)."""
    return _create_vgg("vgg11", input_shape, num_classes, **options)


def vgg11_bn(*, input_shape=None, num_classes=None, **options):
    """VGG-11 with batch normalisation after every convolution."""
    return _create_vgg("vgg11_bn", input_shape, num_classes, **options)


def vgg13(*, input_shape=None, num_classes=None, **options):
    """VGG-13, configuration B (Simonyan & Zisserman 2015)."""
    return _create_vgg("vgg13", input_shape, num_classes, **options)


def vgg13_bn(*, input_shape=None, num_classes=None, **options):
    """VGG-13 with batch normalisation after every convolution."""
    return _create_vgg("vgg13_bn", input_shape, num_classes, **options)


def vgg16(*, input_shape=None, num_classes=None, **options):
    """VGG-16, configuration D (Simonyan & Zisserman 2015)."""
    return _create_vgg("vgg16", input_shape, num_classes, **options)


def vgg16_bn(*, input_shape=None, num_classes=None, **options):
    """VGG-16 with batch normalisation after every convolution."""
    return _create_vgg("vgg16_bn", input_shape, num_classes, **options)


def vgg19(*, input_shape=None, num_classes=None, **options):
    """VGG-19, configuration E (Simonyan & Zisserman 2015)."""
    return _create_vgg("vgg19", input_shape, num_classes, **options)


def vgg19_bn(*, input_shape=None, num_classes=None, **options):
    """VGG-19 with batch normalisation after every convolution."""
    return _create_vgg("vgg19_bn", input_shape, num_classes, **options)
