"""kzoo predict / evaluate on exported files, through their own runtime."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _digits(tmp_path, count=3):
    from kzoo.data import load_dataset

    images = load_dataset("mnist_embedded").x_test[:count]
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"digit{i}.png"))
        Image.fromarray(image).save(paths[-1])
    return paths, images.astype("float32")[..., None] / 255.0


def test_predict_onnx_imports_no_framework(zoo_exports, tmp_path):
    import keras

    _, model, results = zoo_exports["lenet5"]
    images, pixels = _digits(tmp_path)
    script = (
        "import json, sys\n"
        "from kzoo.export.runtime import predict_exported\n"
        f"results = predict_exported({results['onnx']['path']!r}, {images!r}, top_k=10)\n"
        "loaded = [m for m in ('keras', 'torch', 'tensorflow', 'jax') if m in sys.modules]\n"
        "print(json.dumps({'results': results, 'loaded': loaded}))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    expected = np.asarray(keras.ops.convert_to_numpy(model(pixels, training=False)))
    for result, row in zip(report["results"], expected):
        probs = {t["class"]: t["probability"] for t in result["top"]}
        np.testing.assert_allclose([probs[c] for c in range(10)], row, atol=1e-5)


def test_predict_cli_on_saved_model(zoo_exports, tmp_path, cli_runner):
    from kzoo_cli.main import cli

    _, _, results = zoo_exports["lenet5"]
    images, _ = _digits(tmp_path, 2)
    result = cli_runner.invoke(cli, ["predict", results["saved_model"]["path"], *images, "--json", "--top-k", "1"])
    assert result.exit_code == 0, result.output
    assert [r["image"] for r in json.loads(result.output)] == images


def test_evaluate_exported_equals_evaluate_keras(zoo_exports, cli_runner):
    from kzoo.engine.evaluation import evaluate
    from kzoo_cli.main import cli

    checkpoint, _, results = zoo_exports["lenet5"]
    expected = evaluate(checkpoint, data="mnist_embedded", limit=300)
    for fmt in ("onnx", "litert"):
        result = cli_runner.invoke(cli, ["evaluate", results[fmt]["path"], "--data", "mnist_embedded",
                                         "--limit", "300", "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["format"] == fmt and report["samples"] == 300
        assert report["confusion_matrix"] == expected["confusion_matrix"]
        assert abs(report["loss"] - expected["loss"]) < 1e-4


def test_evaluate_exported_needs_a_dataset_for_a_bare_checkpoint(zoo_exports, cli_runner):
    from kzoo_cli.main import cli

    _, _, results = zoo_exports["lenet5"]
    result = cli_runner.invoke(cli, ["evaluate", results["onnx"]["path"]])
    assert result.exit_code == 2 and "pass --data NAME" in result.output


def test_predict_refuses_a_language_model(zoo_exports, tmp_path, cli_runner):
    from kzoo_cli.main import cli

    _, _, results = zoo_exports["lstm_lm"]
    images, _ = _digits(tmp_path, 1)
    result = cli_runner.invoke(cli, ["predict", results["onnx"]["path"], *images])
    assert result.exit_code == 2 and "not an image classifier" in result.output
