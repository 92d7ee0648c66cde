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


def _conv(kernel, channels_in, channels_out):
    return kernel * kernel * channels_in * channels_out + channels_out


# Szegedy et al. 2014, Table 1: input channels, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
PAPER_TABLE = [(192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64), (480, 192, 96, 208, 16, 48, 64),
               (512, 160, 112, 224, 24, 64, 64), (512, 128, 128, 256, 24, 64, 64), (512, 112, 144, 288, 32, 64, 64),
               (528, 256, 160, 320, 32, 128, 128), (832, 256, 160, 320, 32, 128, 128),
               (832, 384, 192, 384, 48, 128, 128)]


def test_params_at_canonical_config(canonical):
    """The paper's layer table, counted by hand: stem, nine Inception blocks, the 1000-way classifier."""
    stem = _conv(7, 3, 64) + _conv(1, 64, 64) + _conv(3, 64, 192)
    inception = sum(_conv(1, c, n1) + _conv(1, c, r3) + _conv(3, r3, n3) + _conv(1, c, r5) + _conv(5, r5, n5)
                    + _conv(1, c, pool) for c, n1, r3, n3, r5, n5, pool in PAPER_TABLE)
    expected = stem + inception + 1024 * 1000 + 1000
    assert canonical.input_shape == (None, 224, 224, 3)
    assert trainable_count(canonical) == expected == kzoo.model_info("googlenet")["params"]


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
