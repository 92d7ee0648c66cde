"""Summaries: parameter counts and multiply-accumulates match published figures, on every backend."""

import json
import os
import subprocess
import sys

import pytest

import kzoo
from kzoo.summary import summary

# torchvision's model tables report these GFLOPS (multiply-accumulates) at 224x224
PUBLISHED_GMACS = {"resnet18": 1.81, "resnet50": 4.09, "googlenet": 1.50, "densenet121": 2.83}


@pytest.mark.parametrize("name,gmacs", sorted(PUBLISHED_GMACS.items()))
def test_macs_match_published(name, gmacs):
    # googlenet: torchvision's variant uses a 3x3 conv in the "5x5" branch, so ours is a little larger
    tolerance = 0.06 if name == "googlenet" else 0.01
    assert summary(name)["macs"] / 1e9 == pytest.approx(gmacs, rel=tolerance)


def test_recurrent_and_shared_layers():
    lstm = summary("lstm")
    assert lstm["macs"] == 28 * 4 * (28 * 128 + 128 * 128) + 128 * 10
    siamese = summary("siamese")
    encoder = next(row for row in siamese["layers"] if row["name"] == "encoder")
    assert encoder["calls"] == 2 and siamese["macs"] == encoder["macs"]


def test_non_trainable_batch_norm_statistics():
    result = summary("resnet18", input_shape=(32, 32, 3), num_classes=10, small_stem=True)
    assert result["non_trainable_params"] > 0
    assert result["total_params"] == result["trainable_params"] + result["non_trainable_params"]


def test_same_numbers_on_another_backend():
    import keras

    other = "tensorflow" if keras.backend.backend() != "tensorflow" else "torch"
    names = ["lenet5", "googlenet", "bilstm", "densenet_small"]
    code = ("import json, sys\nfrom kzoo.summary import summary\n"
            f"print(json.dumps({{n: summary(n) for n in {names!r}}}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, KERAS_BACKEND=other), timeout=300).stdout
    theirs = json.loads(out.strip().splitlines()[-1])
    for name in names:
        ours = json.loads(json.dumps(summary(name)))
        for key in ("total_params", "trainable_params", "non_trainable_params", "macs", "layers"):
            assert ours[key] == theirs[name][key], (name, key)
