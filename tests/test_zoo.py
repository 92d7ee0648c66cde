"""The one harness over every registered model, on whatever backend KERAS_BACKEND selects."""

import pytest

import kzoo
from kzoo.testing import check_model, check_param_count

ALL = kzoo.list_models()
# building these at their canonical size allocates >100 MB of weights: marked slow (.ci/run runs them on torch)
LARGE = {name for name in ALL if (kzoo.model_info(name).get("params") or 0) > 30_000_000}
# saving and reloading these takes several seconds each
HEAVY = LARGE | {"resnet50", "densenet169", "densenet201"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in ALL])
def test_model_builds_trains_and_round_trips(name, tmp_path):
    check_model(name, tmp_path=tmp_path)


# a parameter count does not depend on the backend: the heavy builds count on the torch suite only
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in ALL])
def test_param_count_matches_spec(name):
    check_param_count(name)


PUBLISHED = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
    "resnet152": 60_192_808, "vgg11": 132_863_336, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "densenet121": 7_978_856, "densenet169": 14_149_480, "densenet201": 20_013_928, "alexnet": 62_378_344,
    "lenet5": 61_706,
}


@pytest.mark.parametrize("name,count", sorted(PUBLISHED.items()))
def test_specs_record_published_counts(name, count):
    assert kzoo.model_info(name)["params"] == count


def test_every_model_documents_small_inputs():
    for name in ALL:
        info = kzoo.model_info(name)
        assert info["status"] == "ok", (name, info["error"])
        for key in ("family", "task", "description", "paper", "input_shape", "params"):
            assert info.get(key) is not None, f"{name} has no {key}"
        if info["task"] == "image_classification":
            assert info.get("small_inputs"), f"{name} does not say how it takes 28x28 inputs"
