"""VGG-11/13/16/19 with and without batch normalisation: parameter counts, width, small inputs, options."""

import inspect

import numpy as np
import pytest

import kzoo
from kzoo.errors import OptionError
from kzoo.testing import trainable_count

PARAMS = {
    "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840, "vgg13_bn": 133_053_736, "vgg16_bn": 138_365_992, "vgg19_bn": 143_678_248,
}
SMALL = {"width_multiplier": 0.125, "fc_units": 64}  # cheap builds for the fast tests



def conv_filters(model):
    return [layer.filters for layer in model.layers if layer.__class__.__name__ == "Conv2D"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg16"])  # every variant's count is checked by tests/test_zoo.py
def test_params_at_canonical_config(name):
    model = kzoo.create_model(name)
    assert model.input_shape == (None, 224, 224, 3)
    assert model.get_layer("flatten").output.shape == (None, 7 * 7 * 512)
    assert trainable_count(model) == kzoo.model_info(name)["params"] == PARAMS[name]


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_small_input_is_resized_to_minimum_and_forward(name):
    model = kzoo.create_model(name, input_shape=(28, 28, 1), num_classes=10, **SMALL)
    assert model.get_layer("resize").output.shape[1:3] == (32, 32)
    assert model.get_layer("block5_pool").output.shape[1:3] == (1, 1)
    assert tuple(model(np.zeros((2, 28, 28, 1), "float32"), training=False).shape) == (2, 10)


@pytest.mark.slow
def test_default_width_on_small_input_forward():
    model = kzoo.create_model("vgg16", input_shape=(28, 28, 1), num_classes=10)
    assert tuple(model(np.zeros((2, 28, 28, 1), "float32"), training=False).shape) == (2, 10)


def test_width_multiplier_halves_conv_channels():
    layer_list = kzoo.model_info("vgg11")["arch"]["layers"]
    model = kzoo.create_model("vgg11", input_shape=(32, 32, 3), num_classes=10, width_multiplier=0.5, fc_units=64)
    assert conv_filters(model) == [c // 2 for c in layer_list if c != "M"]
    assert "resize" not in [layer.name for layer in model.layers]


def test_batch_norm_variant_adds_trainable_gamma_and_beta():
    plain = kzoo.create_model("vgg11", input_shape=(32, 32, 3), num_classes=10, **SMALL)
    with_bn = kzoo.create_model("vgg11_bn", input_shape=(32, 32, 3), num_classes=10, **SMALL)
    assert with_bn.get_layer("block3_bn2").gamma.shape == (32,)
    assert trainable_count(with_bn) - trainable_count(plain) == 2 * sum(conv_filters(plain))


def test_pool_and_image_size_options():
    model = kzoo.create_model("vgg11", input_shape=(28, 28, 1), num_classes=10, pool="avg", image_size=64, **SMALL)
    assert model.get_layer("block1_pool").__class__.__name__ == "AveragePooling2D"
    assert model.get_layer("resize").output.shape[1:3] == (64, 64)
    assert model.get_layer("flatten").output.shape == (None, 2 * 2 * 64)


@pytest.mark.parametrize("options, received", [
    ({"width_multiplier": 0}, "Received: width_multiplier=0"),
    ({"image_size": 28}, "Received: image_size=28"),
    ({"pool": "median"}, "Received: pool='median'"),
])
def test_invalid_options_are_rejected(options, received):
    with pytest.raises(OptionError, match=received):
        kzoo.create_model("vgg16", input_shape=(28, 28, 1), num_classes=10, **options)


def test_builder_defaults_match_card():
    from kzoo.models import vgg

    defaults = {k: p.default for k, p in inspect.signature(vgg._create_vgg).parameters.items()
                if p.default is not inspect.Parameter.empty}
    for name in PARAMS:
        assert defaults == {k: o["default"] for k, o in kzoo.model_info(name)["options"].items()}
