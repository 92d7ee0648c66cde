"""DenseNet family: published parameter counts, feature-map sizes, the D2L small DenseNet, option checking."""


import numpy as np
import pytest

import kzoo
from kzoo.errors import OptionError
from kzoo.testing import trainable_count

# torchvision's parameter counts at 224x224x3 and 1000 classes (BN moving statistics excluded); densenet_small
# at its canonical 96x96x1 and 10 classes (Dive into Deep Learning's network, convolutions with bias).
PUBLISHED = {
    "densenet121": 7_978_856,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "densenet_small": 758_226,
}



def forward(model, batch):
    from keras import ops  # imported once kzoo has fixed the backend

    return ops.convert_to_numpy(model(batch))


def spatial(model, layer_name):
    return tuple(model.get_layer(layer_name).output.shape[1:3])


@pytest.fixture(scope="module")
def densenet121():
    return kzoo.create_model("densenet121")


def test_densenet121_feature_maps_match_torchvision(densenet121):
    assert spatial(densenet121, "conv1_conv") == (112, 112)
    assert spatial(densenet121, "pool1") == (56, 56)
    stages = [spatial(densenet121, name) for name in ("conv2_block6_concat", "pool2_pool", "pool3_pool", "pool4_pool")]
    assert stages == [(56, 56), (28, 28), (14, 14), (7, 7)]
    channels = [densenet121.get_layer(name).output.shape[-1]
                for name in ("conv2_block6_concat", "pool2_conv", "conv3_block12_concat", "conv5_block16_concat")]
    assert channels == [256, 128, 512, 1024]  # 64 + 6 * 32, halved, 128 + 12 * 32, 512 + 16 * 32


def test_readable_layer_names(densenet121):
    names = {layer.name for layer in densenet121.layers}
    assert {"conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu", "pool1_pad", "pool1",
            "conv2_block1_0_bn", "conv2_block1_1_conv", "conv2_block1_2_conv", "conv2_block1_concat",
            "pool2_bn", "pool2_conv", "pool2_pool", "bn", "relu", "avg_pool", "logits", "predictions"} <= names


def test_densenet_small_is_the_d2l_network():
    model = kzoo.create_model("densenet_small")
    names = {layer.name for layer in model.layers}
    assert "conv2_block4_2_conv" in names and "conv2_block1_1_conv" not in names  # no bottleneck
    assert "conv6_block1_concat" not in names and "pool5_pool" not in names  # four dense blocks
    assert model.get_layer("conv2_block1_2_conv").use_bias
    assert spatial(model, "pool1") == (24, 24)
    assert model.get_layer("relu").output.shape[1:] == (3, 3, 248)  # 64 -> 192/96 -> 224/112 -> 240/120 -> 248
    assert tuple(model.output.shape) == (None, 10)


def test_densenet_small_growth_rate():
    model = kzoo.create_model("densenet_small", growth_rate=16)
    assert model.get_layer("conv2_block1_2_conv").output.shape[-1] == 16
    assert trainable_count(model) < PUBLISHED["densenet_small"]


# every variant runs in tests/test_zoo.py; DenseNet-121's forward (24 s a stem under jax's compiler) on torch only
@pytest.mark.parametrize("name", [pytest.param("densenet121", marks=pytest.mark.slow), "densenet_small"])
@pytest.mark.parametrize("small_stem", [False, True])
def test_small_inputs_forward(name, small_stem):
    model = kzoo.create_model(name, input_shape=(28, 28, 1), num_classes=10, small_stem=small_stem)
    outputs = forward(model, np.random.default_rng(0).random((2, 28, 28, 1), dtype="float32"))
    assert outputs.shape == (2, 10)
    assert np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-4)


@pytest.mark.parametrize("small_stem, resized, last_stage", [(False, True, (1, 1)), (True, False, (3, 3))])
def test_28x28_resolution_per_stem(small_stem, resized, last_stage):
    model = kzoo.create_model("densenet_small", input_shape=(28, 28, 1), small_stem=small_stem)
    assert ("resize" in {layer.name for layer in model.layers}) is resized  # default stem: 28 -> 32
    assert spatial(model, "relu") == last_stage


@pytest.mark.parametrize("name, options", [
    ("densenet121", {"growth_rate": 16}),  # an option of densenet_small only
    ("densenet121", {"small_stem": "maybe"}),
    ("densenet_small", {"growth_rate": 0}),
    ("densenet_small", {"image_size": 16}),  # at least 32 with the default stem
])
def test_invalid_options_are_rejected(name, options):
    with pytest.raises(OptionError, match="Received|has no option"):
        kzoo.create_model(name, input_shape=(28, 28, 1), num_classes=10, **options)
