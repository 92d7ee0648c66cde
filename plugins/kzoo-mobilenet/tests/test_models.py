"""The plugin's models pass kzoo's own harness: build, one training step, .keras round trip, parameters."""

import pytest

from kzoo.testing import check_model, check_param_count

MODELS = ["mobilenet_v1", "squeezenet1_1"]


@pytest.mark.parametrize("name", MODELS)
def test_model_builds_trains_and_round_trips(name, tmp_path):
    check_model(name, tmp_path=tmp_path)


@pytest.mark.parametrize("name,params", [("mobilenet_v1", 4_231_976), ("squeezenet1_1", 1_235_496)])
def test_canonical_parameter_count(name, params):
    assert check_param_count(name) == params


def test_width_multiplier_matches_keras_applications():
    import kzoo
    from kzoo.testing import trainable_count

    # keras.applications.MobileNet(alpha=0.5, weights=None): 1,331,592 trainable parameters
    assert trainable_count(kzoo.create_model("mobilenet_v1", alpha=0.5)) == 1_331_592


def test_fire_layer_config_round_trip():
    import keras

    from kzoo_mobilenet.layers import Fire

    layer = Fire(16, 64, 64, name="fire")
    assert keras.saving.get_registered_name(Fire) == "kzoo_mobilenet>Fire"
    clone = Fire.from_config(layer.get_config())
    assert (clone.squeeze, clone.expand1x1, clone.expand3x3) == (16, 64, 64)
    assert tuple(layer.compute_output_shape((None, 13, 13, 128))) == (None, 13, 13, 128)
    with pytest.raises(ValueError, match="squeeze=0"):
        Fire(0, 64, 64)
