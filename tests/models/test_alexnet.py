"""AlexNet: parameter count, small inputs, options."""

import inspect

import numpy as np
import pytest

import kzoo
from kzoo.errors import OptionError
from kzoo.testing import trainable_count



@pytest.mark.slow
def test_params_at_canonical_config():
    model = kzoo.create_model("alexnet")
    assert model.input_shape == (None, 227, 227, 3)
    assert trainable_count(model) == kzoo.model_info("alexnet")["params"] == 62_378_344


def test_small_input_is_resized_to_minimum_and_forward():
    model = kzoo.create_model("alexnet", input_shape=(28, 28, 1), num_classes=10)
    assert model.get_layer("resize").output.shape[1:3] == (67, 67)
    assert model.get_layer("pool5").output.shape[1:3] == (1, 1)
    assert tuple(model(np.zeros((2, 28, 28, 1), "float32"), training=False).shape) == (2, 10)


def test_image_size_resizes_every_input():
    model = kzoo.create_model("alexnet", input_shape=(28, 28, 1), num_classes=10, image_size=99)
    assert model.get_layer("resize").output.shape[1:3] == (99, 99)
    assert model.get_layer("pool5").output.shape[1:3] == (2, 2)


@pytest.mark.parametrize("options, received", [
    ({"image_size": 32}, "Received: image_size=32"),
    ({"dropout": 1.5}, "Received: dropout=1.5"),
])
def test_invalid_options_are_rejected(options, received):
    with pytest.raises(OptionError, match=received):
        kzoo.create_model("alexnet", input_shape=(28, 28, 1), num_classes=10, **options)


def test_builder_defaults_match_card():
    from kzoo.models import alexnet

    defaults = {k: p.default for k, p in inspect.signature(alexnet._create_alexnet).parameters.items()
                if p.default is not inspect.Parameter.empty}
    assert defaults == {k: o["default"] for k, o in kzoo.model_info("alexnet")["options"].items()}
