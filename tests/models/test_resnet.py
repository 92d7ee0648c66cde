"""ResNet family (parameter counts: tests/test_zoo.py): torchvision feature-map sizes, small inputs, option checking."""

import numpy as np
import pytest

import kzoo
from kzoo.errors import OptionError


def forward(model, batch):
    from keras import ops  # imported once kzoo has fixed the backend

    return ops.convert_to_numpy(model(batch))


def spatial(model, layer_name):
    return tuple(model.get_layer(layer_name).output.shape[1:3])


@pytest.fixture(scope="module")
def resnet18():
    return kzoo.create_model("resnet18")


def test_resnet18_feature_maps_match_torchvision(resnet18):
    assert spatial(resnet18, "conv1_conv") == (112, 112)
    assert spatial(resnet18, "pool1_pool") == (56, 56)
    stages = [spatial(resnet18, f"conv{stage}_block2_out") for stage in (2, 3, 4, 5)]
    assert stages == [(56, 56), (28, 28), (14, 14), (7, 7)]
    assert resnet18.get_layer("conv5_block2_out").output.shape[-1] == 512


def test_readable_layer_names(resnet18):
    names = {layer.name for layer in resnet18.layers}
    assert {"conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu", "pool1_pad", "pool1_pool",
            "conv2_block1_1_conv", "conv2_block1_2_bn", "conv2_block1_add", "conv2_block1_out",
            "conv3_block1_0_conv", "conv3_block1_1_pad", "avg_pool", "logits", "predictions"} <= names
    assert "conv2_block1_0_conv" not in names  # same width and stride: identity shortcut


def test_bottleneck_strides_on_the_3x3():
    model = kzoo.create_model("resnet50", input_shape=(64, 64, 3), num_classes=10)
    assert spatial(model, "conv3_block1_1_conv") == (16, 16)  # the 1x1 reduce keeps the resolution
    assert spatial(model, "conv3_block1_2_conv") == (8, 8)
    assert model.get_layer("conv2_block1_0_conv").output.shape[-1] == 256  # 64 -> 256 projection
    assert model.get_layer("conv5_block3_out").output.shape[-1] == 2048


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])  # every variant runs in tests/test_zoo.py
@pytest.mark.parametrize("small_stem", [False, True])
def test_small_inputs_forward(name, small_stem):
    model = kzoo.create_model(name, input_shape=(28, 28, 1), num_classes=10, small_stem=small_stem)
    outputs = forward(model, np.random.default_rng(0).random((2, 28, 28, 1), dtype="float32"))
    assert outputs.shape == (2, 10)
    assert np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-4)


@pytest.mark.parametrize("small_stem, resized, last_stage", [(False, True, (1, 1)), (True, False, (4, 4))])
def test_28x28_resolution_per_stem(small_stem, resized, last_stage):
    model = kzoo.create_model("resnet18", input_shape=(28, 28, 1), num_classes=10, small_stem=small_stem)
    assert ("resize" in {layer.name for layer in model.layers}) is resized  # default stem: 28 -> 32
    assert spatial(model, "conv5_block2_out") == last_stage


def test_image_size_resizes_in_the_graph():
    model = kzoo.create_model("resnet18", input_shape=(28, 28, 1), num_classes=10, image_size=64)
    assert tuple(model.get_layer("resize").output.shape[1:3]) == (64, 64)
    assert spatial(model, "conv5_block2_out") == (2, 2)


@pytest.mark.parametrize("options", [
    {"small_stem": "maybe"},
    {"growth_rate": 16},
    {"image_size": 4},
    {"image_size": 16},  # at least 32 with the default stem
])
def test_invalid_options_are_rejected(options):
    with pytest.raises(OptionError, match="Received|has no option"):
        kzoo.create_model("resnet18", input_shape=(28, 28, 1), num_classes=10, **options)
