"""``MODEL_CARD.md``: written by the trainer from the run's own records; ``kzoo export`` appends its verification."""

import json
import os
import pathlib
import shutil

import numpy as np
import pytest
import yaml

from kzoo.data.dataset import Dataset
from kzoo.engine.model_card import CARD, EXPORTS_HEADING, append_export, data_digest


def _records(folder):
    return (yaml.safe_load((folder / "config.yaml").read_text()), json.loads((folder / "metrics.json").read_text()),
            json.loads((folder / "state.json").read_text()))


def test_the_card_says_what_the_run_records(finished_run):
    import kzoo

    folder = pathlib.Path(finished_run["run_dir"])
    card = (folder / CARD).read_text()
    config, metrics, state = _records(folder)
    params = kzoo.load_model(str(folder / "best.keras"), compile=False).count_params()
    assert card.startswith("# lenet5 on mnist_embedded\n")
    assert f"| parameters | {params:,} ({params:,} trainable) |" in card
    assert f"best {state['monitor']} {state['best']:.4f}" in card and f"epoch {state['best_epoch']} of 2" in card
    assert "| split | train 90, validation 30, test 120 (val_split 0.25, test_split 0.1, seed 0, --limit 120) |" in card
    assert (f"| optimizer | {config['optimizer']}, lr {config['lr']}, {config['schedule']} schedule, weight decay "
            f"{config['weight_decay']} |") in card
    assert "| epochs | 2 done of 2 asked, batch 60 |" in card
    assert f"Measured on {metrics['split']} ({metrics['samples']} samples)" in card
    for key in ("accuracy", "loss", "macro_f1"):
        assert f"| {key} | {metrics[key]:.4f} |" in card
    assert f"| backend | {config['backend']}, {config['engine_used']} engine, {config['dtype_policy']}" in card
    assert config["machine"]["platform"] in card and f"keras {config['versions']['keras']}" in card
    from kzoo.data import load_dataset

    sha, _ = data_digest(load_dataset("mnist_embedded"))
    assert f"| sha256 | `{sha}` (the loaded x_train, y_train, x_test, y_test) |" in card
    assert card.rstrip().endswith("None yet: `kzoo export` adds one entry per verified file.")


def test_the_data_digest_is_of_the_content():
    images = np.arange(24, dtype="uint8").reshape(2, 3, 4)
    a = Dataset("a", images, np.array([0, 1]), images, np.array([1, 0]))
    same = Dataset("b", images.copy(), np.array([0, 1]), images.copy(), np.array([1, 0]))
    other = Dataset("a", images, np.array([1, 1]), images, np.array([1, 0]))
    assert data_digest(a) == data_digest(same) != data_digest(other)
    texts = Dataset("t", np.array(["a b", "c"], dtype=object), np.array(["x", "y"], dtype=object), None, None)
    again = Dataset("t", np.array(["a b", "c"], dtype=object), np.array(["x", "y"], dtype=object), None, None)
    assert data_digest(texts) == data_digest(again)  # the strings, not where they lie in memory
    assert data_digest(Dataset("t", task="text", text="abc"))[0] != data_digest(Dataset("t", task="text",
                                                                                        text="abd"))[0]


def test_an_image_folder_is_hashed_by_its_file_list(tmp_path):
    from PIL import Image

    from kzoo.data.image_folder import open_image_folder

    for i in range(8):
        os.makedirs(tmp_path / "pics" / f"c{i % 2}", exist_ok=True)
        Image.new("L", (8, 8), color=i * 20).save(tmp_path / "pics" / f"c{i % 2}" / f"{i}.png")

    def digest():
        folder = open_image_folder(str(tmp_path / "pics"), val_split=0.25, test_split=0.25, seed=0, image_size=None,
                                   channels=None, strict=False)
        return data_digest(folder)

    first, covers = digest()
    assert covers == "the file list: each file's path, label, split and size" and digest()[0] == first
    Image.new("L", (8, 8), color=255).save(tmp_path / "pics" / "c0" / "extra.png")
    assert digest()[0] != first


def test_export_appends_its_verification(finished_run, tmp_path):
    """``kzoo export``'s last step (the worker's outcome placed and recorded), without running a worker."""
    from kzoo import export as kzoo_export

    if kzoo_export.get_format("onnx").missing_modules():
        pytest.skip("the export extra is not installed")
    folder = tmp_path / "run"
    shutil.copytree(finished_run["run_dir"], folder)
    before = (folder / CARD).read_text()
    job = kzoo_export._prepare(str(folder), "onnx")
    open(job["tmp"], "wb").close()  # the worker's verified file
    outcome = {"max_abs_diff": 6e-8, "scaled_diff": 6e-8, "top1_agreement": 1.0, "finite": True, "samples": 120,
               "verification_data": "mnist_embedded test images (the run's data)", "metadata": {}}
    result = kzoo_export._finish(job, outcome)
    assert result["ok"] and os.path.exists(folder / "best.onnx")
    card = (folder / CARD).read_text()
    assert card.startswith(before.split(EXPORTS_HEADING)[0]) and card.count(EXPORTS_HEADING) == 1
    assert "None yet" not in card
    assert f"### onnx: `{job['path']}`" in card and "| max abs diff | 6e-08 |" in card
    assert "| top-1 agreement | 100.00% |" in card and "| samples | 120 |" in card
    assert "| verified on | mnist_embedded test images (the run's data) |" in card
    append_export(str(folder), dict(result, format="litert", path="x.tflite", top1_agreement=None))
    card = (folder / CARD).read_text()
    assert card.index("### onnx") < card.index("### litert") and card.count(EXPORTS_HEADING) == 1
    assert not [n for n in os.listdir(folder) if n.startswith(".kzoo-tmp")]


def test_a_run_without_a_card_gets_one_for_its_exports(tmp_path):
    (tmp_path / "config.yaml").write_text("model: mlp\ndata: mnist\n")
    append_export(str(tmp_path), {"format": "onnx", "path": "m.onnx", "source": "last.keras", "ok": True,
                                  "max_abs_diff": 0.0, "top1_agreement": 1.0, "samples": 3, "tolerance": 1e-4})
    card = (tmp_path / CARD).read_text()
    assert card.startswith("# mlp on mnist\n") and "no training card" in card and "### onnx: `m.onnx`" in card
