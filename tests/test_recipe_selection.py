"""``benchmarks/recipe_selection.py`` chooses on validation only and reads the test figures of the winner alone."""

import importlib.util
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def selection_module():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))  # the script imports its sibling provenance.py
    try:
        spec = importlib.util.spec_from_file_location("kzoo_recipe_selection",
                                                      os.path.join(ROOT, "benchmarks", "recipe_selection.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(os.path.join(ROOT, "benchmarks"))


def test_the_winner_has_the_best_validation_value_and_only_it_has_test_figures(selection_module, tmp_path):
    from kzoo.registry import resolve_model_options

    for study in selection_module.STUDIES.values():  # every candidate of every study is a valid kzoo.train call
        for candidate in study["candidates"].values():
            resolve_model_options(study["base"]["model"], candidate.get("options", {}))

    jsonl = tmp_path / "rows.jsonl"
    selection = selection_module.select("lstm", candidates=["1x128-raw", "2x192-input-norm"],
                                        output_root=str(tmp_path), overrides={"limit": 400, "epochs": 1},
                                        jsonl=str(jsonl))
    rows = selection["rows"]
    values = {}
    for row in rows:  # read back independently: state.json holds the validation value that picked the checkpoint
        state = json.load(open(os.path.join(row["run"], "state.json")))
        assert state["monitor"] == "val_accuracy" and row["validation"] == state["best"]
        values[row["candidate"]] = state["best"]
        provenance = json.load(open(os.path.join(row["run"], "provenance.json")))
        assert provenance["command"].startswith("kzoo train lstm --data mnist_embedded --epochs 1 --seed 0")
        assert provenance["commit"] and provenance["machine"]
    best = max(values.values())
    assert values[selection["chosen"]] == best
    winner = next(r for r in rows if r["chosen"])
    metrics = json.load(open(os.path.join(winner["run"], "metrics.json")))
    assert winner["test"]["accuracy"] == metrics["accuracy"]
    assert [r["test"] for r in rows if not r["chosen"]] == [None]
    assert [json.loads(line)["candidate"] for line in open(jsonl)] == ["1x128-raw", "2x192-input-norm"]


def test_the_command_line_equals_the_python_call(selection_module):
    command = selection_module.train_command({"model": "captioner", "data": "digit_captions", "epochs": 8,
                                              "augment": True, "quiet": True, "lr": None,
                                              "options": {"filters": [16, 32, 32], "dropout": 0.3,
                                                          "input_norm": False}})
    assert command == ("kzoo train captioner --data digit_captions --epochs 8 --augment -o filters=16,32,32 "
                       "-o dropout=0.3 -o input_norm=false")
