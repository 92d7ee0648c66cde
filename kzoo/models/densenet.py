"""DenseNet-121/169/201 (torchvision/Keras layout) and the small DenseNet of Dive into Deep Learning.

G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger, "Densely Connected Convolutional Networks", CVPR 2017.
https://arxiv.org/abs/1608.06993

Each conv block (BN-ReLU-1x1 conv to ``4 * growth`` channels, BN-ReLU-3x3 conv to ``growth`` channels) is
concatenated to its input along the channels; transition blocks (BN-ReLU-1x1 conv halving the channels, 2x2
average pooling) sit between the dense blocks. Convolutions have no bias; BatchNorm uses torch's epsilon 1e-5
and momentum 0.1 (Keras 0.9). ``densenet_small`` is the Fashion-MNIST network of A. Zhang et al., "Dive into
Deep Learning", section 8.7 (https://d2l.ai/chapter_convolutional-modern/densenet.html): four dense blocks of
four BN-ReLU-3x3 conv blocks, no bottleneck, convolutions with bias, 96x96x1 inputs.

Small inputs: the default stem (7x7/2 convolution, 3x3/2 max pooling) and the three transitions divide the
input by 32, and a 2x2 average pooling of a 1x1 map is empty, so inputs under 32x32 (MNIST's 28x28) are
resized to 32x32 in the graph. ``small_stem=True`` (a 3x3/1 convolution, no max pooling) divides by 8 only and
keeps 28x28 inputs as they are: the recommended setting for 28x28 and 32x32 data.
"""

from keras import layers

from kzoo.layers import classifier_head, normalized_inputs
from kzoo.models import _base

MODEL_CARD = {
    "family": "densenet",
    "task": "image_classification",
    "input_shape": (224, 224, 3),
    "num_classes": 1000,
    "paper": "Huang, Liu, van der Maaten, Weinberger, Densely Connected Convolutional Networks, CVPR 2017",
    "small_inputs": "inputs under 32x32 are resized to 32x32 in the graph; small_stem=True (3x3/1 stem, no max "
                    "pooling, inputs from 8x8) is recommended for 28x28 and 32x32 data",
    "options": {
        "small_stem": {"default": False,
                       "help": "3x3/1 convolution stem without max pooling (for 28x28/32x32 data)"},
        "image_size": {"default": None, "type": "int", "min": 8,
                       "help": "resize every input to this size in the graph (at least 32, 8 with small_stem)"},
        "input_normalization": {"default": "none", "choices": ["none", "imagenet", "caffe"],
                                "help": "normalise [0, 1] inputs in the graph as published weights expect "
                                        "(imagenet: torchvision's mean/std; caffe: keras.applications VGG's "
                                        "BGR mean); --weights sets it"},
    },
    "recipe": {"optimizer": "sgd", "lr": 0.1, "batch_size": 256, "epochs": 10},
}

SPECS = {
    "densenet121": {
        "description": "DenseNet-121: dense blocks (6, 12, 24, 16), growth 32, bottleneck 4x, compression 0.5",
        "paper": "Huang et al., Densely Connected Convolutional Networks, 2017 (arXiv:1608.06993)",
        "params": 7_978_856,
        "arch": {"blocks": (6, 12, 24, 16), "bn_size": 4, "compression": 0.5, "stem_filters": 64, "use_bias": False},
        "weights": {
            "torchvision": {"file": "densenet121-a639ec97.pth",
                            "url": "https://download.pytorch.org/models/densenet121-a639ec97.pth",
                            "sha256": "a639ec97", "top1": 74.434, "preprocessing": "imagenet"},
            "imagenet": {"file": "densenet121_weights_tf_dim_ordering_tf_kernels.h5",
                         "url": "https://storage.googleapis.com/tensorflow/keras-applications/densenet/densenet121_weights_tf_dim_ordering_tf_kernels.h5",
                         "md5": "9d60b8095a5708f2dcce2bca79d332c7", "top1": 75.0, "preprocessing": "imagenet"},
        },
    },
    "densenet169": {
        "description": "DenseNet-169: dense blocks (6, 12, 32, 32), growth 32, bottleneck 4x, compression 0.5",
        "paper": "Huang et al., Densely Connected Convolutional Networks, 2017 (arXiv:1608.06993)",
        "params": 14_149_480,
        "arch": {"blocks": (6, 12, 32, 32), "bn_size": 4, "compression": 0.5, "stem_filters": 64, "use_bias": False},
        "weights": {
            "torchvision": {"file": "densenet169-b2777c0a.pth",
                            "url": "https://download.pytorch.org/models/densenet169-b2777c0a.pth",
                            "sha256": "b2777c0a", "top1": 75.6, "preprocessing": "imagenet"},
            "imagenet": {"file": "densenet169_weights_tf_dim_ordering_tf_kernels.h5",
                         "url": "https://storage.googleapis.com/tensorflow/keras-applications/densenet/densenet169_weights_tf_dim_ordering_tf_kernels.h5",
                         "md5": "d699b8f76981ab1b30698df4c175e90b", "top1": 76.2, "preprocessing": "imagenet"},
        },
    },
    "densenet201": {
        "description": "DenseNet-201: dense blocks (6, 12, 48, 32), growth 32, bottleneck 4x, compression 0.5",
        "paper": "Huang et al., Densely Connected Convolutional Networks, 2017 (arXiv:1608.06993)",
        "params": 20_013_928,
        "arch": {"blocks": (6, 12, 48, 32), "bn_size": 4, "compression": 0.5, "stem_filters": 64, "use_bias": False},
        "weights": {
            "torchvision": {"file": "densenet201-c1103571.pth",
                            "url": "https://download.pytorch.org/models/densenet201-c1103571.pth",
                            "sha256": "c1103571", "top1": 76.896, "preprocessing": "imagenet"},
            "imagenet": {"file": "densenet201_weights_tf_dim_ordering_tf_kernels.h5",
                         "url": "https://storage.googleapis.com/tensorflow/keras-applications/densenet/densenet201_weights_tf_dim_ordering_tf_kernels.h5",
                         "md5": "1ceb130c1ea1b78c3bf6114dbdfd8807", "top1": 77.3, "preprocessing": "imagenet"},
        },
    },
    "densenet_small": {
        "description": "Dive into Deep Learning's DenseNet for Fashion-MNIST: 4 dense blocks of 4 BN-ReLU-3x3 "
                       "conv blocks (growth 32), transitions halving the channels",
        "paper": "Zhang, Lipton, Li, Smola, Dive into Deep Learning, section 8.7 (DenseNet); after Huang et al. 2017",
        "input_shape": (96, 96, 1),
        "num_classes": 10,
        "params": 758_226,
        "arch": {"blocks": (4, 4, 4, 4), "bn_size": None, "compression": 0.5, "stem_filters": 64, "use_bias": True},
        "options": {
            "growth_rate": {"default": 32, "min": 1, "help": "channels each conv block adds"},
        },
    },
}


def _bn_relu(x, name):
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _conv(filters, kernel_size, use_bias, name, strides=1, padding="same"):
    return layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias,
                         kernel_initializer="he_normal", name=name)


def _conv_block(x, growth_rate, bn_size, use_bias, name):
    """BN-ReLU-[1x1 conv to ``bn_size * growth_rate``, BN-ReLU]-3x3 conv, concatenated to ``x``.

    The bracketed bottleneck (layers ``{name}_1_*``) is left out when ``bn_size`` is ``None``.
    """
    y = _bn_relu(x, f"{name}_0")
    if bn_size:
        y = _conv(bn_size * growth_rate, 1, use_bias, f"{name}_1_conv")(y)
        y = _bn_relu(y, f"{name}_1")
    y = _conv(growth_rate, 3, use_bias, f"{name}_2_conv")(y)
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def _dense_block(x, blocks, growth_rate, bn_size, use_bias, name):
    for index in range(1, blocks + 1):
        x = _conv_block(x, growth_rate, bn_size, use_bias, f"{name}_block{index}")
    return x


def _transition_block(x, compression, use_bias, name):
    """BN-ReLU-1x1 conv to ``compression`` times the channels, then 2x2/2 average pooling."""
    x = _bn_relu(x, name)
    x = _conv(int(x.shape[-1] * compression), 1, use_bias, f"{name}_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def _create_densenet(name, input_shape, num_classes, small_stem=False, image_size=None,
                     input_normalization="none", growth_rate=32):
    spec = SPECS[name]
    arch = spec["arch"]
    use_bias = arch["use_bias"]
    inputs, x = _base.inputs_for(spec, MODEL_CARD, input_shape, min_size=8 if small_stem else 32,
                                 image_size=image_size)
    x = normalized_inputs(x, input_normalization)
    if small_stem:
        x = _conv(arch["stem_filters"], 3, use_bias, "conv1_conv")(x)
        x = _bn_relu(x, "conv1")
    else:
        x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
        x = _conv(arch["stem_filters"], 7, use_bias, "conv1_conv", strides=2, padding="valid")(x)
        x = _bn_relu(x, "conv1")
        x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    last = len(arch["blocks"]) + 1
    for stage, blocks in enumerate(arch["blocks"], start=2):
        x = _dense_block(x, blocks, growth_rate, arch["bn_size"], use_bias, f"conv{stage}")
        if stage < last:
            x = _transition_block(x, arch["compression"], use_bias, f"pool{stage}")
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = classifier_head(x, _base.classes_for(spec, MODEL_CARD, num_classes))
    return _base.functional(inputs, outputs, name)


def densenet121(*, input_shape=None, num_classes=None, **options):
    """DenseNet-121 (dense blocks 6-12-24-16); ``small_stem=True`` for 28x28/32x32 data."""
    return _create_densenet("densenet121", input_shape, num_classes, **options)


def densenet169(*, input_shape=None, num_classes=None, **options):
    """DenseNet-169 (dense blocks 6-12-32-32); ``small_stem=True`` for 28x28/32x32 data."""
    return _create_densenet("densenet169", input_shape, num_classes, **options)


def densenet201(*, input_shape=None, num_classes=None, **options):
    """DenseNet-201 (dense blocks 6-12-48-32); ``small_stem=True`` for 28x28/32x32 data."""
    return _create_densenet("densenet201", input_shape, num_classes, **options)


def densenet_small(*, input_shape=None, num_classes=None, **options):
    """Dive into Deep Learning's DenseNet for 96x96 Fashion-MNIST (4x4 conv blocks, growth ``growth_rate``)."""
    return _create_densenet("densenet_small", input_shape, num_classes, **options)
