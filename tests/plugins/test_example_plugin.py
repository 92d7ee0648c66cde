"""The example plugin ``plugins/kzoo-mobilenet`` through the CLI, on the current backend.

Skipped unless it is installed (``pip install ./plugins/kzoo-mobilenet``; ``.ci/run`` installs it).
"""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("kzoo_mobilenet")

from kzoo.registry import models  # noqa: E402
from kzoo.testing import check_model, check_param_count  # noqa: E402
from kzoo_cli.main import cli  # noqa: E402

SMALL = ["--input-shape", "28,28,1", "--num-classes", "10"]


@pytest.fixture(autouse=True)
def fresh_registry():
    models.reset()  # other tests install throwaway distributions
    yield


def run(runner, *args):
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_discovered_with_metadata(cli_runner):
    rows = {row["name"]: row for row in json.loads(run(cli_runner, "list", "--json"))}
    for name, family in (("mobilenet_v1", "mobilenet"), ("squeezenet1_1", "squeezenet")):
        assert rows[name]["distribution"] == "kzoo-mobilenet" and rows[name]["family"] == family
        assert rows[name]["status"] == "ok" and not rows[name]["builtin"]
    report = json.loads(run(cli_runner, "plugins", "--json"))
    row = next(r for r in report["distributions"] if r["distribution"] == "kzoo-mobilenet")
    assert row["status"] == "ok" and sorted(row["models"]) == ["mobilenet_v1", "squeezenet1_1"]
    assert row["layers"] == ["kzoo_mobilenet.layers"]


def test_info_and_summary(cli_runner):
    info = json.loads(run(cli_runner, "info", "mobilenet_v1", "--json"))
    assert info["params"] == 4_231_976 and info["options"]["alpha"]["choices"] == [0.25, 0.5, 0.75, 1.0]
    assert "alpha" in run(cli_runner, "info", "mobilenet_v1")
    summary = json.loads(run(cli_runner, "summary", "squeezenet1_1", "--json"))
    assert summary["trainable_params"] == 1_235_496
    fire = next(row for row in summary["layers"] if row["name"] == "fire2")
    assert fire["type"] == "Fire" and fire["macs"] == 55 * 55 * 16 * (64 + 64 + 9 * 64)
    small = json.loads(run(cli_runner, "summary", "mobilenet_v1", *SMALL, "-o", "alpha=0.25", "--json"))
    assert small["output_shape"] == [[10]]


@pytest.mark.parametrize("name", ["mobilenet_v1", "squeezenet1_1"])
def test_kzoo_harness(name, tmp_path):
    check_model(name, tmp_path=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name,params", [("mobilenet_v1", 4_231_976), ("squeezenet1_1", 1_235_496)])
def test_canonical_parameter_counts(name, params):
    assert check_param_count(name) == params


def test_build_load_and_missing_plugin(cli_runner, tmp_path):
    import kzoo

    path = str(tmp_path / "squeezenet.keras")
    run(cli_runner, "build", "squeezenet1_1", *SMALL, "--output", path)
    loaded = kzoo.load_model(path)
    assert type(loaded.get_layer("fire2")).__module__ == "kzoo_mobilenet.layers"
    code = ("import sys\nfrom kzoo.errors import CheckpointError\nfrom kzoo.engine.checkpoints import load_model\n"
            "try:\n    load_model(sys.argv[1])\nexcept CheckpointError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KZOO_DISABLE_PLUGINS": "1"})
    assert "'kzoo_mobilenet>Fire'" in done.stdout and "'kzoo-mobilenet'" in done.stdout, done.stdout + done.stderr


def test_train_evaluate_predict(cli_runner, tmp_path):
    import numpy as np
    from PIL import Image

    import kzoo
    from kzoo.data import load_dataset

    run_dir = str(tmp_path / "run")
    run(cli_runner, "train", "mobilenet_v1", "--limit", "200", "--epochs", "1", "--batch-size", "50", "--quiet",
        "-o", "alpha=0.25", "--output", run_dir)
    assert os.path.exists(os.path.join(run_dir, "best.keras")) or os.path.exists(os.path.join(run_dir, "last.keras"))
    report = json.loads(run(cli_runner, "evaluate", run_dir, "--limit", "100", "--json"))
    data = load_dataset("mnist_embedded")
    best = os.path.join(run_dir, "best.keras")
    model = kzoo.load_model(best if os.path.exists(best) else os.path.join(run_dir, "last.keras"))
    probs = model.predict(data.x_test[:100, ..., None].astype("float32") / 255.0, verbose=0)
    assert report["accuracy"] == pytest.approx(float(np.mean(probs.argmax(axis=1) == data.y_test[:100])), abs=1e-6)
    image = str(tmp_path / "digit.png")
    Image.fromarray(data.x_test[0]).save(image)
    predictions = json.loads(run(cli_runner, "predict", run_dir, image, "--json"))
    assert len(predictions[0]["top"]) == 3
