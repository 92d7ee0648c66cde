"""Network in Network: parameter count, small inputs, the global-pooling head, options."""

import inspect

import numpy as np
import pytest

import kzoo
from kzoo.errors import OptionError
from kzoo.testing import trainable_count



def test_params_at_canonical_config():
    """By hand from the layout (d2l, Lin et al. 2014): each NiN block is a k x k convolution and two 1x1 ones."""
    def nin_block(kernel, channels_in, filters):
        return kernel * kernel * channels_in * filters + filters + 2 * (filters * filters + filters)

    expected = nin_block(11, 3, 96) + nin_block(5, 96, 256) + nin_block(3, 256, 384) + nin_block(3, 384, 1000)
    model = kzoo.create_model("nin")
    assert model.input_shape == (None, 224, 224, 3)
    assert trainable_count(model) == expected == kzoo.model_info("nin")["params"]


def test_small_input_is_resized_to_minimum_and_forward():
    model = kzoo.create_model("nin", input_shape=(28, 28, 1), num_classes=10)
    assert model.get_layer("resize").output.shape[1:3] == (67, 67)
    assert model.get_layer("block3_pool").output.shape[1:3] == (1, 1)
    assert model.get_layer("block4_conv3").output.shape[-1] == 10
    assert model.get_layer("logits").output.shape == (None, 10)
    assert not any(layer.__class__.__name__ == "Dense" for layer in model.layers)
    assert tuple(model(np.zeros((2, 28, 28, 1), "float32"), training=False).shape) == (2, 10)


@pytest.mark.parametrize("options, received", [
    ({"image_size": 20}, "Received: image_size=20"),
    ({"dropout": -0.1}, "Received: dropout=-0.1"),
])
def test_invalid_options_are_rejected(options, received):
    with pytest.raises(OptionError, match=received):
        kzoo.create_model("nin", input_shape=(28, 28, 1), num_classes=10, **options)


def test_builder_defaults_match_card():
    from kzoo.models import nin

    defaults = {k: p.default for k, p in inspect.signature(nin._create_nin).parameters.items()
                if p.default is not inspect.Parameter.empty}
    assert defaults == {k: o["default"] for k, o in kzoo.model_info("nin")["options"].items()}
