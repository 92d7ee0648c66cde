"""Network in Network: "mlpconv" blocks (a convolution followed by two 1x1 convolutions) and global pooling.

M. Lin, Q. Chen, S. Yan, "Network In Network", ICLR 2014. https://arxiv.org/abs/1312.4400

The ImageNet-sized layout of d2l (chapter "Network in Network"): NiN blocks of 96@11x11 stride 4 (unpadded),
256@5x5 and 384@3x3, each followed by a 3x3/2 max pool, dropout 0.5, and a last NiN block whose 3x3 and 1x1
convolutions have ``num_classes`` channels. Every convolution is followed by ReLU, as in the paper's Caffe
models. There is no fully connected layer: the global average of each class map, the layer named ``logits``,
is that class's score, followed by the float32 softmax ``predictions``.

The smallest side the network can process is 67 (the last pool then sees a 3x3 map); smaller inputs such as
28x28 MNIST digits are resized to 67x67 inside the graph. ``image_size`` resizes every input to a chosen side
instead (d2l trains Fashion-MNIST at 224).
"""

from keras import layers

from kzoo.models import _base

MIN_SIZE = 67

MODEL_CARD = {
    "family": "nin",
    "task": "image_classification",
    "input_shape": (224, 224, 3),
    "num_classes": 1000,
    "small_inputs": "inputs under 67x67 (the smallest the conv/pool stack can process) are resized to 67x67 "
                    "in the graph; image_size resizes every input to a chosen side",
    # Adam 3e-4: at 1e-3 some class maps' final ReLU dies early and stays at 0 (Fashion-MNIST, 10k images, 3 epochs:
    # 0.29 test accuracy vs 0.58 at 3e-4; docs/accuracy.md)
    "recipe": {"optimizer": "adam", "lr": 0.0003, "batch_size": 128, "epochs": 5},
}

SPECS = {
    "nin": {
        "description": "Network in Network: NiN blocks 96@11x11/4, 256@5x5, 384@3x3 with max pools, dropout, "
                       "a num_classes NiN block and global average pooling (no FC layer)",
        "paper": "Lin, Chen, Yan, Network In Network, ICLR 2014",
        "params": 7_439_608,
        "arch": {"blocks": [[96, 11, 4], [256, 5, 1], [384, 3, 1]], "head_kernel": 3},
        "options": {
            "dropout": {"default": 0.5, "min": 0.0, "max": 0.95, "help": "dropout before the last NiN block"},
            "image_size": {"default": None, "type": "int", "min": 67,
                           "help": "resize every input to image_size x image_size in the graph "
                                   "(default: only inputs under 67x67, which are resized to 67x67)"},
        },
    },
}


def _nin_block(x, filters, kernel, strides, padding, name):
    """A ``kernel`` convolution and two 1x1 convolutions (``{name}_conv1..3``), all with ``filters`` and ReLU."""
    # He initialisation: twelve ReLU convolutions with Glorot's smaller variance let the signal vanish before the
    # global average pooling (no batch norm here to rescue it)
    conv = {"activation": "relu", "kernel_initializer": "he_normal"}
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, name=f"{name}_conv1", **conv)(x)
    x = layers.Conv2D(filters, 1, name=f"{name}_conv2", **conv)(x)
    return layers.Conv2D(filters, 1, name=f"{name}_conv3", **conv)(x)


def _create_nin(name, input_shape, num_classes, dropout=0.5, image_size=None):
    spec = SPECS[name]
    arch = spec["arch"]
    inputs, x = _base.inputs_for(spec, MODEL_CARD, input_shape, min_size=MIN_SIZE, image_size=image_size)
    for index, (filters, kernel, strides) in enumerate(arch["blocks"], start=1):
        padding = "valid" if index == 1 else "same"
        x = _nin_block(x, filters, kernel, strides, padding, name=f"block{index}")
        x = layers.MaxPooling2D(3, strides=2, name=f"block{index}_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    classes = _base.classes_for(spec, MODEL_CARD, num_classes)
    x = _nin_block(x, classes, arch["head_kernel"], 1, "same", name=f"block{len(arch['blocks']) + 1}")
    x = layers.GlobalAveragePooling2D(name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="predictions")(x)
    return _base.functional(inputs, outputs, name)


def nin(*, input_shape=None, num_classes=None, **options):
    """Network in Network (Lin et al. 2014), d2l's ImageNet-sized layout."""
    return _create_nin("nin", input_shape, num_classes, **options)
