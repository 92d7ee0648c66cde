"""SqueezeNet 1.1: Fire modules (squeeze 1x1, expand 1x1 + 3x3) between three max pools.

F. N. Iandola, S. Han, M. W. Moskewicz, K. Ashraf, W. J. Dally, K. Keutzer, "SqueezeNet: AlexNet-level
accuracy with 50x fewer parameters and <0.5MB model size", 2016. https://arxiv.org/abs/1602.07360
Version 1.1 is the variant of the authors' repository (github.com/forresti/SqueezeNet, also torchvision's
``squeezenet1_1``): a 64@3x3/2 first convolution and the pools moved earlier, 2.4x cheaper than 1.0 at the
same accuracy.

Layout: conv1 64@3x3/2 + ReLU, max pool 3/2, fire2-3, max pool, fire4-5, max pool, fire6-9, dropout 0.5,
then the classifier. The paper's conv10 (a 1x1 convolution to ``num_classes`` followed by global average
pooling) is written as global average pooling followed by the Dense ``logits``: the same parameters and,
as both are linear, the same scores, except that the ReLU the reference code puts on the class maps is
dropped (it only clips scores). Running the classifier after pooling also makes it 169x cheaper: 0.263 G
multiply-accumulates per 224x224 image instead of the reference's 0.350 G. Max pools floor (Keras "valid"); at 224x224 this equals the reference
code's ``ceil_mode=True``.

The smallest side the network can process is 31 (the last pool then sees a 3x3 map); smaller inputs such as
28x28 MNIST digits are resized to 31x31 inside the graph. ``image_size`` resizes every input to a chosen side
instead.
"""

import keras
from keras import layers

from kzoo.layers import classifier_head, image_inputs
from kzoo_mobilenet.layers import Fire

MIN_SIZE = 31

MODEL_CARD = {
    "family": "squeezenet",
    "task": "image_classification",
    "input_shape": (224, 224, 3),
    "num_classes": 1000,
    "paper": "Iandola et al., SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model "
             "size, 2016",
    "small_inputs": "inputs under 31x31 (the smallest the conv/pool stack can process) are resized to 31x31 in "
                    "the graph; image_size resizes every input to a chosen side",
    "recipe": {"optimizer": "adam", "lr": 0.001, "batch_size": 64, "epochs": 3},
}

SPECS = {
    "squeezenet1_1": {
        "description": "SqueezeNet 1.1: conv 64@3x3/2, 8 Fire modules (16-64 squeeze, 64-256 expand) between "
                       "3 max pools, dropout, global pooling (Iandola et al. 2016)",
        "params": 1_235_496,
        # Fire modules (squeeze, expand1x1, expand3x3), grouped by the max pool that precedes them.
        "arch": {"stem": 64, "stages": [[[16, 64, 64], [16, 64, 64]],
                                        [[32, 128, 128], [32, 128, 128]],
                                        [[48, 192, 192], [48, 192, 192], [64, 256, 256], [64, 256, 256]]]},
        "options": {
            "dropout": {"default": 0.5, "min": 0.0, "max": 0.95, "help": "dropout before the classifier"},
            "image_size": {"default": None, "type": "int", "min": 31,
                           "help": "resize every input to image_size x image_size in the graph "
                                   "(default: only inputs under 31x31, which are resized to 31x31)"},
        },
    },
}


def _create_squeezenet(name, input_shape, num_classes, dropout=0.5, image_size=None):
    spec = SPECS[name]
    arch = spec["arch"]
    inputs, x = image_inputs(input_shape, default_shape=spec.get("input_shape", MODEL_CARD["input_shape"]),
                             min_size=MIN_SIZE, image_size=image_size)
    x = layers.Conv2D(arch["stem"], 3, strides=2, activation="relu", name="conv1")(x)
    index = 2
    for stage, fires in enumerate(arch["stages"], start=1):
        x = layers.MaxPooling2D(3, strides=2, name=f"pool{stage}")(x)
        for squeeze, expand1x1, expand3x3 in fires:
            x = Fire(squeeze, expand1x1, expand3x3, name=f"fire{index}")(x)
            index += 1
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    classes = num_classes if num_classes is not None else spec.get("num_classes", MODEL_CARD["num_classes"])
    outputs = classifier_head(x, classes)
    return keras.Model(inputs, outputs, name=name)


def squeezenet1_1(*, input_shape=None, num_classes=None, **options):
    """SqueezeNet 1.1 (Iandola et al. 2016, the authors' v1.1 layout), with ``Fire`` layers."""
    return _create_squeezenet("squeezenet1_1", input_shape, num_classes, **options)
