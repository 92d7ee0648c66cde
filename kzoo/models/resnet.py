"""ResNet-18/34 (basic blocks) and ResNet-50/101/152 (bottleneck blocks), torchvision layout.

K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
https://arxiv.org/abs/1512.03385

The layout is torchvision's "ResNet v1.5": a bottleneck block downsamples with its 3x3 convolution (not its
first 1x1), convolutions have no bias, and BatchNorm uses torch's epsilon 1e-5 and momentum 0.1 (Keras 0.9).
The 7x7/2 stem, the 3x3/2 max pooling and every strided 3x3 convolution get explicit symmetric zero padding
and no padding of their own, so every feature map has exactly torchvision's size and alignment (zeros pad the
max pooling like torch's -inf would, since its input comes out of a ReLU).

Small inputs: the default stem divides the input by 32 in total; inputs under 32x32 (MNIST's 28x28) are
resized to 32x32 in the graph, so the last stage sees 1x1 maps. For 28x28 or 32x32 data the recommended
setting is ``small_stem=True`` (CIFAR-style): a 3x3/1 convolution replaces the 7x7/2 convolution and the max
pooling, the network divides the input by 8, and a 28x28 image reaches the last stage at 4x4.
"""

from keras import layers

from kzoo.layers import classifier_head, normalized_inputs
from kzoo.models import _base

MODEL_CARD = {
    "family": "resnet",
    "task": "image_classification",
    "input_shape": (224, 224, 3),
    "num_classes": 1000,
    "paper": "He, Zhang, Ren, Sun, Deep Residual Learning for Image Recognition, CVPR 2016",
    "small_inputs": "inputs under 32x32 are resized to 32x32 in the graph (1x1 maps in the last stage); "
                    "small_stem=True (3x3/1 stem, no max pooling) is recommended for 28x28 and 32x32 data",
    "options": {
        "small_stem": {"default": False,
                       "help": "3x3/1 convolution stem without max pooling (CIFAR-style, for 28x28/32x32 data)"},
        "image_size": {"default": None, "type": "int", "min": 8,
                       "help": "resize every input to this size in the graph (at least 32, 8 with small_stem)"},
        "input_normalization": {"default": "none", "choices": ["none", "imagenet", "caffe"],
                                "help": "normalise [0, 1] inputs in the graph as published weights expect "
                                        "(imagenet: torchvision's mean/std; caffe: keras.applications VGG's "
                                        "BGR mean); --weights sets it"},
    },
    "recipe": {"optimizer": "sgd", "lr": 0.05, "batch_size": 256, "epochs": 10},
}

SPECS = {
    "resnet18": {
        "description": "ResNet-18: basic blocks (2, 2, 2, 2), widths 64-512, torchvision layout",
        "paper": "He et al., Deep Residual Learning for Image Recognition, 2016 (arXiv:1512.03385)",
        "params": 11_689_512,
        "arch": {"block": "basic", "stages": (2, 2, 2, 2)},
        "weights": {
            "torchvision": {"file": "resnet18-f37072fd.pth",
                            "url": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
                            "sha256": "f37072fd", "top1": 69.758, "preprocessing": "imagenet"},
        },
    },
    "resnet34": {
        "description": "ResNet-34: basic blocks (3, 4, 6, 3), widths 64-512, torchvision layout",
        "paper": "He et al., Deep Residual Learning for Image Recognition, 2016 (arXiv:1512.03385)",
        "params": 21_797_672,
        "arch": {"block": "basic", "stages": (3, 4, 6, 3)},
        "weights": {
            "torchvision": {"file": "resnet34-b627a593.pth",
                            "url": "https://download.pytorch.org/models/resnet34-b627a593.pth",
                            "sha256": "b627a593", "top1": 73.314, "preprocessing": "imagenet"},
        },
    },
    "resnet50": {
        "description": "ResNet-50: bottleneck blocks (3, 4, 6, 3), stride on the 3x3 (torchvision v1.5)",
        "paper": "He et al., Deep Residual Learning for Image Recognition, 2016 (arXiv:1512.03385)",
        "params": 25_557_032,
        "arch": {"block": "bottleneck", "stages": (3, 4, 6, 3)},
        "weights": {
            "torchvision": {"file": "resnet50-0676ba61.pth",
                            "url": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
                            "sha256": "0676ba61", "top1": 76.13, "preprocessing": "imagenet"},
        },
    },
    "resnet101": {
        "description": "ResNet-101: bottleneck blocks (3, 4, 23, 3), stride on the 3x3 (torchvision v1.5)",
        "paper": "He et al., Deep Residual Learning for Image Recognition, 2016 (arXiv:1512.03385)",
        "params": 44_549_160,
        "arch": {"block": "bottleneck", "stages": (3, 4, 23, 3)},
        "weights": {
            "torchvision": {"file": "resnet101-63fe2227.pth",
                            "url": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
                            "sha256": "63fe2227", "top1": 77.374, "preprocessing": "imagenet"},
        },
    },
    "resnet152": {
        "description": "ResNet-152: bottleneck blocks (3, 8, 36, 3), stride on the 3x3 (torchvision v1.5)",
        "paper": "He et al., Deep Residual Learning for Image Recognition, 2016 (arXiv:1512.03385)",
        "params": 60_192_808,
        "arch": {"block": "bottleneck", "stages": (3, 8, 36, 3)},
        "weights": {
            "torchvision": {"file": "resnet152-394f9c45.pth",
                            "url": "https://download.pytorch.org/models/resnet152-394f9c45.pth",
                            "sha256": "394f9c45", "top1": 78.312, "preprocessing": "imagenet"},
        },
    },
}

_STAGE_WIDTHS = (64, 128, 256, 512)  # stages conv2 .. conv5; a bottleneck block outputs 4x its width
_BOTTLENECK_EXPANSION = 4


def _conv_bn(x, filters, kernel_size, stride, name, *, relu=True):
    """Convolution without bias, BatchNorm and (optionally) ReLU, named ``{name}_conv/_bn/_relu``.

    A strided convolution wider than 1x1 gets torch's symmetric zero padding (``{name}_pad``) and no padding
    of its own; Keras' ``same`` would pad a strided convolution on the bottom/right only.
    """
    padding = "same"
    if stride > 1 and kernel_size > 1:
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    x = layers.Conv2D(filters, kernel_size, strides=stride, padding=padding, use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}_bn")(x)
    if relu:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    return x


def _shortcut(x, channels, stride, name):
    """The identity, or a 1x1 projection (``{name}_0``) when the stride or the channel count changes."""
    if stride == 1 and x.shape[-1] == channels:
        return x
    return _conv_bn(x, channels, 1, stride, f"{name}_0", relu=False)


def _residual_out(shortcut, residual, name):
    x = layers.Add(name=f"{name}_add")([shortcut, residual])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _basic_block(x, filters, stride, name):
    """Two 3x3 convolutions (the first one strided) plus the shortcut."""
    shortcut = _shortcut(x, filters, stride, name)
    y = _conv_bn(x, filters, 3, stride, f"{name}_1")
    y = _conv_bn(y, filters, 3, 1, f"{name}_2", relu=False)
    return _residual_out(shortcut, y, name)


def _bottleneck_block(x, filters, stride, name):
    """1x1 reduce, strided 3x3, 1x1 expand to ``4 * filters``, plus the shortcut (torchvision v1.5)."""
    channels = _BOTTLENECK_EXPANSION * filters
    shortcut = _shortcut(x, channels, stride, name)
    y = _conv_bn(x, filters, 1, 1, f"{name}_1")
    y = _conv_bn(y, filters, 3, stride, f"{name}_2")
    y = _conv_bn(y, channels, 1, 1, f"{name}_3", relu=False)
    return _residual_out(shortcut, y, name)


_BLOCKS = {"basic": _basic_block, "bottleneck": _bottleneck_block}


def _create_resnet(name, input_shape, num_classes, small_stem=False, image_size=None,
                   input_normalization="none"):
    spec = SPECS[name]
    arch = spec["arch"]
    inputs, x = _base.inputs_for(spec, MODEL_CARD, input_shape, min_size=8 if small_stem else 32,
                                 image_size=image_size)
    x = normalized_inputs(x, input_normalization)
    if small_stem:
        x = _conv_bn(x, _STAGE_WIDTHS[0], 3, 1, "conv1")
    else:
        x = _conv_bn(x, _STAGE_WIDTHS[0], 7, 2, "conv1")
        x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    block = _BLOCKS[arch["block"]]
    for stage, (filters, blocks) in enumerate(zip(_STAGE_WIDTHS, arch["stages"]), start=2):
        for index in range(1, blocks + 1):
            stride = 2 if index == 1 and stage > 2 else 1
            x = block(x, filters, stride, f"conv{stage}_block{index}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = classifier_head(x, _base.classes_for(spec, MODEL_CARD, num_classes))
    return _base.functional(inputs, outputs, name)


def resnet18(*, input_shape=None, num_classes=None, **options):
    """ResNet-18 (basic blocks 2-2-2-2); ``small_stem=True`` for 28x28/32x32 data."""
    return _create_resnet("resnet18", input_shape, num_classes, **options)


def resnet34(*, input_shape=None, num_classes=None, **options):
    """ResNet-34 (basic blocks 3-4-6-3); ``small_stem=True`` for 28x28/32x32 data."""
    return _create_resnet("resnet34", input_shape, num_classes, **options)


def resnet50(*, input_shape=None, num_classes=None, **options):
    """ResNet-50 (bottleneck blocks 3-4-6-3, torchvision v1.5); ``small_stem=True`` for 28x28/32x32 data."""
    return _create_resnet("resnet50", input_shape, num_classes, **options)


def resnet101(*, input_shape=None, num_classes=None, **options):
    """ResNet-101 (bottleneck blocks 3-4-23-3, torchvision v1.5); ``small_stem=True`` for 28x28/32x32 data."""
    return _create_resnet("resnet101", input_shape, num_classes, **options)


def resnet152(*, input_shape=None, num_classes=None, **options):
    """ResNet-152 (bottleneck blocks 3-8-36-3, torchvision v1.5); ``small_stem=True`` for 28x28/32x32 data."""
    return _create_resnet("resnet152", input_shape, num_classes, **options)
