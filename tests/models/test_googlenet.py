"""GoogLeNet: parameter count, the Inception channel chain, small inputs, options."""

import inspect

import numpy as np
import pytest

import kzoo
from kzoo.errors import OptionError
from kzoo.testing import trainable_count

CHANNELS = {"3a": 256, "3b": 480, "4a": 512, "4b": 512, "4c": 512, "4d": 528, "4e": 832, "5a": 832, "5b": 1024}



@pytest.fixture(scope="module")
def canonical():
    return kzoo.create_model("googlenet")


def test_params_at_canonical_config(canonical):
    assert canonical.input_shape == (None, 224, 224, 3)
    assert trainable_count(canonical) == kzoo.model_info("googlenet")["params"] == 6_998_552


def test_channel_chain_and_sizes(canonical):
    assert canonical.get_layer("stem_pool2").output.shape[1:] == (28, 28, 192)
    for block, channels in CHANNELS.items():
        side = {"3": 28, "4": 14, "5": 7}[block[0]]
        assert canonical.get_layer(f"inception_{block}_concat").output.shape[1:] == (side, side, channels)


def test_inception_3a_params_by_hand(canonical):
    # 1x1: 192*64+64; 3x3: 192*96+96 + 9*96*128+128; 5x5: 192*16+16 + 25*16*32+32; pool proj: 192*32+32
    expected = (192 * 64 + 64) + (192 * 96 + 96 + 9 * 96 * 128 + 128) + (192 * 16 + 16 + 25 * 16 * 32 + 32) + (
        192 * 32 + 32)
    block = [layer for layer in canonical.layers if layer.name.startswith("inception_3a_")]
    assert sum(layer.count_params() for layer in block) == expected == 163_696


def test_small_input_is_resized_to_minimum_and_forward():
    model = kzoo.create_model("googlenet", input_shape=(28, 28, 1), num_classes=10)
    assert model.get_layer("resize").output.shape[1:3] == (32, 32)
    assert model.get_layer("inception_5b_concat").output.shape[1:] == (1, 1, 1024)
    assert tuple(model(np.zeros((2, 28, 28, 1), "float32"), training=False).shape) == (2, 10)


@pytest.mark.parametrize("options, received", [
    ({"image_size": 16}, "Received: image_size=16"),
    ({"dropout": 1.0}, "Received: dropout=1.0"),
])
def test_invalid_options_are_rejected(options, received):
    with pytest.raises(OptionError, match=received):
        kzoo.create_model("googlenet", input_shape=(28, 28, 1), num_classes=10, **options)


def test_builder_defaults_match_card():
    from kzoo.models import googlenet

    defaults = {k: p.default for k, p in inspect.signature(googlenet._create_googlenet).parameters.items()
                if p.default is not inspect.Parameter.empty}
    assert defaults == {k: o["default"] for k, o in kzoo.model_info("googlenet")["options"].items()}
