"""GoogLeNet (Inception v1) without the auxiliary classifiers.

C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan, V. Vanhoucke, A. Rabinovich,
"Going Deeper with Convolutions", CVPR 2015. https://arxiv.org/abs/1409.4842

Stem: conv 64@7x7/2, max pool 3x3/2, conv 64@1x1, conv 192@3x3, max pool 3x3/2 (all same-padded, so 224
becomes 112, 56, 28). Then Inception blocks 3a-3b, a max pool, 4a-4e, a max pool, 5a-5b (channels
192 -> 256 -> 480 -> 512 -> 512 -> 512 -> 528 -> 832 -> 832 -> 1024, table 1 of the paper), global average
pooling, dropout 0.4 and the classifier. Each Inception block concatenates four branches: 1x1; 1x1 then 3x3;
1x1 then 5x5; 3x3/1 max pool then 1x1. Local response normalisation and the two auxiliary heads are omitted.

Same padding leaves at least one pixel at every size, but five halvings of a tiny image leave nothing to
learn from: inputs under 32x32 (28x28 MNIST) are resized to 32x32 inside the graph. ``image_size`` resizes
every input to a chosen side (d2l trains Fashion-MNIST at 96).
"""

from keras import layers

from kzoo.layers import classifier_head
from kzoo.models import _base

MIN_SIZE = 32

MODEL_CARD = {
    "family": "googlenet",
    "task": "image_classification",
    "input_shape": (224, 224, 3),
    "num_classes": 1000,
    "small_inputs": "inputs under 32x32 are resized to 32x32 in the graph (five stride-2 stages); image_size "
                    "resizes every input to a chosen side (d2l: 96)",
    "recipe": {"optimizer": "adam", "lr": 0.001, "batch_size": 128, "epochs": 5},
}

SPECS = {
    "googlenet": {
        "description": "GoogLeNet / Inception v1: stem, Inception 3a-3b, 4a-4e, 5a-5b, global average pooling, "
                       "dropout 0.4 (no auxiliary heads, no LRN)",
        "paper": "Szegedy et al., Going Deeper with Convolutions, CVPR 2015",
        "params": 6_998_552,
        # One list per stage (a 3x3/2 max pool between stages); each block is
        # [name, c1, [c2 reduce, c2], [c3 reduce, c3], c4] as in table 1 of the paper.
        "arch": {"stages": [
            [["3a", 64, [96, 128], [16, 32], 32],
             ["3b", 128, [128, 192], [32, 96], 64]],
            [["4a", 192, [96, 208], [16, 48], 64],
             ["4b", 160, [112, 224], [24, 64], 64],
             ["4c", 128, [128, 256], [24, 64], 64],
             ["4d", 112, [144, 288], [32, 64], 64],
             ["4e", 256, [160, 320], [32, 128], 128]],
            [["5a", 256, [160, 320], [32, 128], 128],
             ["5b", 384, [192, 384], [48, 128], 128]],
        ]},
        "options": {
            "dropout": {"default": 0.4, "min": 0.0, "max": 0.95, "help": "dropout before the classifier"},
            "image_size": {"default": None, "type": "int", "min": 32,
                           "help": "resize every input to image_size x image_size in the graph "
                                   "(default: only inputs under 32x32, which are resized to 32x32)"},
        },
    },
}


def _conv(x, filters, kernel, name, strides=1):
    """A same-padded convolution with ReLU."""
    return layers.Conv2D(filters, kernel, strides=strides, padding="same", activation="relu", name=name)(x)


def _inception(x, c1, c2, c3, c4, name):
    """An Inception block: four branches concatenated along channels into ``{name}_concat``.

    Args:
        x: the input tensor.
        c1: channels of the 1x1 branch.
        c2: ``(reduce, out)`` channels of the 1x1 -> 3x3 branch.
        c3: ``(reduce, out)`` channels of the 1x1 -> 5x5 branch.
        c4: channels of the 1x1 convolution after the 3x3/1 max pool.
        name: prefix of the block's layer names, e.g. ``inception_3a``.

    Returns:
        The concatenation, with ``c1 + c2[1] + c3[1] + c4`` channels.
    """
    branch1 = _conv(x, c1, 1, name=f"{name}_1x1")
    branch2 = _conv(x, c2[0], 1, name=f"{name}_3x3_reduce")
    branch2 = _conv(branch2, c2[1], 3, name=f"{name}_3x3")
    branch3 = _conv(x, c3[0], 1, name=f"{name}_5x5_reduce")
    branch3 = _conv(branch3, c3[1], 5, name=f"{name}_5x5")
    branch4 = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch4 = _conv(branch4, c4, 1, name=f"{name}_pool_proj")
    return layers.Concatenate(name=f"{name}_concat")([branch1, branch2, branch3, branch4])


def _stem(x):
    """conv 64@7x7/2, max pool, conv 64@1x1, conv 192@3x3, max pool: an eighth of the input side."""
    x = _conv(x, 64, 7, name="stem_conv1", strides=2)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool1")(x)
    x = _conv(x, 64, 1, name="stem_conv2")
    x = _conv(x, 192, 3, name="stem_conv3")
    return layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool2")(x)


def _create_googlenet(name, input_shape, num_classes, dropout=0.4, image_size=None):
    spec = SPECS[name]
    inputs, x = _base.inputs_for(spec, MODEL_CARD, input_shape, min_size=MIN_SIZE, image_size=image_size)
    x = _stem(x)
    stages = spec["arch"]["stages"]
    for index, stage in enumerate(stages):
        if index:
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{index + 2}")(x)
        for block, c1, c2, c3, c4 in stage:
            x = _inception(x, c1, c2, c3, c4, name=f"inception_{block}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = classifier_head(x, _base.classes_for(spec, MODEL_CARD, num_classes), dropout=dropout)
    return _base.functional(inputs, outputs, name)


def googlenet(*, input_shape=None, num_classes=None, **options):
    """GoogLeNet / Inception v1 (Szegedy et al. 2015) without auxiliary heads."""
    return _create_googlenet("googlenet", input_shape, num_classes, **options)
