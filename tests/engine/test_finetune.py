"""--freeze-backbone / --unfreeze-at: which layers train, checked with keras.Model.fit, and the epoch phases."""

import keras
import numpy as np
import pytest

from kzoo.engine import config as cfg
from kzoo.engine import finetune
from kzoo.errors import OptionError


def _small_classifier():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))


def test_frozen_layers_and_their_batch_norm_statistics_stay_put_in_fit():
    keras.utils.set_random_seed(0)
    model = _small_classifier()
    assert finetune.freeze_backbone(model) == 2 and finetune.is_frozen(model)
    before = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
    model.compile(optimizer=keras.optimizers.SGD(0.5),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    model.fit(rng.random((16, 8, 8, 1), dtype="float32") * 5, rng.integers(0, 3, 16), epochs=1, verbose=0)
    for name, arrays in before.items():
        same = all(np.array_equal(a, b) for a, b in zip(arrays, model.get_layer(name).get_weights()))
        assert same == (name != "logits"), name
    finetune.unfreeze(model)
    assert not finetune.is_frozen(model) and len(model.trainable_weights) == 6


@pytest.mark.parametrize("freeze,unfreeze_at,initial,expected", [
    (False, 0, 0, [(0, 5, True)]),
    (True, 0, 0, [(0, 5, False)]),
    (True, 2, 0, [(0, 2, False), (2, 5, True)]),
    (True, 2, 3, [(3, 5, True)]),  # resumed after the boundary
    (True, 9, 1, [(1, 5, False)]),  # a boundary past the last epoch never comes
])
def test_phases(freeze, unfreeze_at, initial, expected):
    config = cfg.resolve({"model": "resnet18", "epochs": 5, "freeze_backbone": freeze, "unfreeze_at": unfreeze_at})
    assert finetune.phases(config, initial) == expected


def test_unfreeze_at_needs_freeze_backbone():
    with pytest.raises(OptionError, match="unfreeze_at needs freeze_backbone"):
        cfg.resolve({"model": "resnet18", "unfreeze_at": 2})
