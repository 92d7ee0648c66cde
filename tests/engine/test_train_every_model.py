"""Every registered image model trains one epoch on a small subset of the embedded MNIST, through kzoo.train."""

import math
import os

import pytest

import kzoo

IMAGE_MODELS = kzoo.list_models(task="image_classification")
# large fully connected heads are narrowed so one epoch stays cheap; the architecture code path is the same
CHEAP = {name: {"width_multiplier": 0.25, "fc_units": 256} for name in IMAGE_MODELS if name.startswith("vgg")}
HEAVY = {name for name in IMAGE_MODELS if (kzoo.model_info(name).get("params") or 0) > 20_000_000}
# jax compiles a training and an evaluation step per model (a minute or more each on 2 cores): the whole sweep
# is "slow" there; torch and tensorflow run it in every CI pass
if os.environ.get("KERAS_BACKEND") == "jax":
    HEAVY = set(IMAGE_MODELS) - {"lenet5", "mlp"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in IMAGE_MODELS])
def test_one_epoch_on_a_small_subset(name, tmp_path):
    result = kzoo.train(name, epochs=1, limit=64, batch_size=32, val_split=0.25, quiet=True,
                        output=str(tmp_path / name), options=CHEAP.get(name, {}))
    assert result["samples"] == 64 and math.isfinite(result["loss"])
    assert (tmp_path / name / "last.keras").exists() and (tmp_path / name / "metrics.csv").exists()
