"""MobileNet v1: depthwise separable convolutions with a width multiplier.

A. G. Howard, M. Zhu, B. Chen, D. Kalenichenko, W. Wang, T. Weyand, M. Andreetto, H. Adam, "MobileNets:
Efficient Convolutional Neural Networks for Mobile Vision Applications", 2017. https://arxiv.org/abs/1704.04861

Layout (the paper's Table 1): a 32@3x3/2 convolution, then 13 depthwise separable blocks (3x3 depthwise
convolution, batch norm, ReLU6, 1x1 pointwise convolution, batch norm, ReLU6) with 64, 128, 128, 256, 256,
512 (x6), 1024 and 1024 pointwise filters, global average pooling, dropout and the classifier. Convolutions
have no bias (batch norm follows). ``alpha`` is the width multiplier (every filter count times ``alpha``) and
``depth_multiplier`` the paper's resolution-independent depthwise multiplier, as in
``keras.applications.MobileNet``. Strided layers use "same" padding, which at even sizes pads bottom/right
exactly as the reference TensorFlow implementation.

The network halves the resolution five times; inputs under 32x32 (28x28 MNIST digits) are resized to 32x32
inside the graph, so the last blocks still see a 1x1 map. ``image_size`` resizes every input to a chosen
side instead.
"""

import keras
from keras import layers

from kzoo.layers import classifier_head, image_inputs

MIN_SIZE = 32

MODEL_CARD = {
    "family": "mobilenet",
    "task": "image_classification",
    "input_shape": (224, 224, 3),
    "num_classes": 1000,
    "paper": "Howard et al., MobileNets: Efficient Convolutional Neural Networks for Mobile Vision "
             "Applications, 2017",
    "small_inputs": "inputs under 32x32 are resized to 32x32 in the graph (five stride-2 stages); image_size "
                    "resizes every input to a chosen side",
    "recipe": {"optimizer": "adam", "lr": 0.001, "batch_size": 64, "epochs": 3},
}

SPECS = {
    "mobilenet_v1": {
        "description": "MobileNet v1: conv 32@3x3/2 and 13 depthwise separable blocks (64-1024 filters), "
                       "width multiplier alpha (Howard et al. 2017)",
        "params": 4_231_976,
        "arch": {"stem": 32,
                 # (pointwise filters, depthwise stride) of the 13 blocks
                 "blocks": [[64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2], [512, 1], [512, 1],
                            [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1]]},
        "options": {
            "alpha": {"default": 1.0, "choices": [0.25, 0.5, 0.75, 1.0],
                      "help": "width multiplier: every layer's filters times alpha"},
            "depth_multiplier": {"default": 1, "min": 1, "max": 4,
                                 "help": "depthwise channels per input channel"},
            "dropout": {"default": 0.001, "min": 0.0, "max": 0.95,
                        "help": "dropout before the classifier (keras.applications uses 1e-3)"},
            "image_size": {"default": None, "type": "int", "min": 32,
                           "help": "resize every input to image_size x image_size in the graph "
                                   "(default: only inputs under 32x32, which are resized to 32x32)"},
        },
    },
}


def _conv_bn(x, filters, kernel, strides, name):
    """A bias-free ``kernel`` convolution (``{name}``), batch norm (``{name}_bn``) and ReLU6."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x)


def _separable_block(x, filters, strides, depth_multiplier, name):
    """Depthwise 3x3 (``{name}_dw``) and pointwise 1x1 (``{name}_pw``), each with batch norm and ReLU6."""
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", depth_multiplier=depth_multiplier,
                               use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    return _conv_bn(x, filters, 1, 1, name=f"{name}_pw")


def _create_mobilenet(name, input_shape, num_classes, alpha=1.0, depth_multiplier=1, dropout=0.001,
                      image_size=None):
    spec = SPECS[name]
    arch = spec["arch"]
    inputs, x = image_inputs(input_shape, default_shape=spec.get("input_shape", MODEL_CARD["input_shape"]),
                             min_size=MIN_SIZE, image_size=image_size)
    x = _conv_bn(x, int(arch["stem"] * alpha), 3, 2, name="conv1")
    for index, (filters, strides) in enumerate(arch["blocks"], start=1):
        x = _separable_block(x, int(filters * alpha), strides, depth_multiplier, name=f"block{index}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    classes = num_classes if num_classes is not None else spec.get("num_classes", MODEL_CARD["num_classes"])
    outputs = classifier_head(x, classes)
    return keras.Model(inputs, outputs, name=name)


def mobilenet_v1(*, input_shape=None, num_classes=None, **options):
    """MobileNet v1 (Howard et al. 2017); ``alpha`` scales every layer's width."""
    return _create_mobilenet("mobilenet_v1", input_shape, num_classes, **options)
