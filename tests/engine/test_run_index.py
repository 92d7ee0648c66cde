"""``kzoo runs``: run folders listed with an honest status, filtered, sorted, compared (``kzoo.engine.run_index``).

One tiny real training (``finished_run``, shared); every other folder is written by hand: an interrupted run,
one whose process died, a live one (this process holds its lock), a failed one, broken and foreign folders.
"""

import json
import os
import shutil

import pytest
import yaml

from kzoo.engine import run_process
from kzoo.engine.run_index import COLUMNS, compare_runs, describe_run, list_runs
from kzoo.errors import KzooError, TrainingDiverged


def _hand_run(folder, *, model="lenet5", epochs_done=1, epochs=3, config=None, state=None, process=None,
              metrics_csv=True):
    """A run folder as the trainer leaves it part way (``epochs_done`` committed epochs)."""
    os.makedirs(folder)
    data = {"model": model, "data": "mnist_embedded", "epochs": epochs, "lr": 0.001, "backend": "torch",
            "engine_used": "torch", "world_size": 1, "task_kind": "classification", "options": {"pool": "max"},
            "output": str(folder), **(config or {})}
    (folder / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (folder / "state.json").write_text(json.dumps({"epochs_done": epochs_done, "best": 0.5, "best_epoch": 1,
                                                   "monitor": "val_accuracy", **(state or {})}))
    if metrics_csv:
        rows = "".join(f"{e},0.{e + 1},1.5,{2.0 - e / 10},0.{e + 2},1.{9 - e}\n" for e in range(epochs_done))
        (folder / "metrics.csv").write_text("epoch,accuracy,epoch_time,loss,val_accuracy,val_loss\n" + rows)
    if process is not None:
        (folder / "process.json").write_text(json.dumps(process))
    return folder


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory, finished_run):
    """A folder of runs in every state."""
    root = tmp_path_factory.mktemp("listing")
    shutil.copytree(finished_run["run_dir"], root / "lenet5-tiny-1")
    _hand_run(root / "ctrl-c", state={"interrupted": {"during_epoch": 2}},
              process={"pid": 1, "host": "h", "created": "2020-01-01T00:00:00+0000", "wall_s": 5.0,
                       "outcome": "interrupted"})
    _hand_run(root / "killed", model="resnet18", epochs_done=2,
              process={"pid": 2, "host": "h", "created": "2021-01-01T00:00:00+0000", "started": "x", "wall_s": 0.0})
    _hand_run(root / "diverged", model="mlp", process={"pid": 3, "host": "h", "created": "2022-01-01T00:00:00+0000",
                                                       "wall_s": 9.0, "outcome": "failed",
                                                       "reason": "diverged: The loss became NaN at epoch 2"})
    _hand_run(root / "legacy", model="vgg11", config={"backend": "tensorflow", "engine_used": "tf"})
    os.makedirs(root / "claimed")
    (root / "claimed" / "config.yaml").write_text("")
    os.makedirs(root / "photos")
    (root / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    torn = _hand_run(root / "torn", model="gru")
    (torn / "state.json").write_text('{"epochs_do')
    (root / "notes.txt").write_text("a file, not a run: ignored")
    os.makedirs(root / ".hidden")
    return root


def _by_name(rows):
    return {row["name"]: row for row in rows}


def test_every_folder_has_an_honest_status(runs_root, finished_run):
    rows = _by_name(list_runs(runs_root))
    assert set(rows) == {"lenet5-tiny-1", "ctrl-c", "killed", "diverged", "legacy", "claimed", "photos", "torn"}
    assert {name: row["status"] for name, row in rows.items()} == {
        "lenet5-tiny-1": "finished", "ctrl-c": "interrupted", "killed": "interrupted", "diverged": "failed",
        "legacy": "unknown", "claimed": "broken", "photos": "broken", "torn": "broken"}
    assert "Ctrl-C during epoch 2" in rows["ctrl-c"]["reason"]
    assert "process 2 on h stopped without finishing" in rows["killed"]["reason"]
    assert rows["diverged"]["reason"].startswith("diverged: The loss became NaN")
    assert "claimed but never started" in rows["claimed"]["reason"]
    assert rows["photos"]["reason"] == "not a kzoo run folder (no config.yaml)"
    assert "state.json is not valid JSON" in rows["torn"]["reason"] and rows["torn"]["model"] == "gru"
    for row in rows.values():
        assert list(row) == list(COLUMNS)
        json.dumps(row)  # plain data, as --json prints it


def test_a_finished_run_reads_like_its_own_records(runs_root):
    row = describe_run(runs_root / "lenet5-tiny-1")
    folder = runs_root / "lenet5-tiny-1"
    state = json.loads((folder / "state.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    config = yaml.safe_load((folder / "config.yaml").read_text())
    record = json.loads((folder / "process.json").read_text())
    assert record["outcome"] == "finished" and record["pid"] == os.getpid() and record["wall_s"] > 0
    assert (row["model"], row["data"], row["backend"], row["engine"], row["devices"]) == (
        "lenet5", "mnist_embedded", config["backend"], config["engine_used"], 1)
    assert (row["epochs_done"], row["epochs"]) == (2, 2)
    assert (row["monitor"], row["best"], row["best_epoch"]) == ("val_accuracy", state["best"], state["best_epoch"])
    assert (row["test_metric"], row["test"], row["test_split"]) == ("accuracy", metrics["accuracy"], metrics["split"])
    assert row["wall_s"] == record["wall_s"] and row["date"] == record["created"] and row["train_s"] >= 0


def test_a_run_whose_lock_is_held_is_running(tmp_path):
    folder = _hand_run(tmp_path / "live", epochs_done=1)
    held = run_process.hold_run(str(folder))
    try:
        row = describe_run(folder)
        assert row["status"] == "running" and f"process {os.getpid()}" in row["reason"]
        assert "epoch 2" in row["reason"]
        with pytest.raises(KzooError, match="is being trained by process"):
            run_process.refuse_if_running(str(folder))
        import kzoo

        with pytest.raises(KzooError, match="is being trained by process"):  # before recovery touches a file
            kzoo.train(resume=str(folder), epochs=5, quiet=True)
    finally:
        held.release(TrainingDiverged("The loss became NaN at epoch 2, batch 1"))
    row = describe_run(folder)
    assert row["status"] == "failed" and row["reason"] == "diverged: The loss became NaN at epoch 2, batch 1"
    assert json.loads((folder / "process.json").read_text())["sessions"] == 1
    again = run_process.hold_run(str(folder))  # a resume: the record carries the earlier sessions
    again.release(KeyboardInterrupt())
    record = json.loads((folder / "process.json").read_text())
    assert record["sessions"] == 2 and record["outcome"] == "interrupted"


def test_filter_sort_and_bad_arguments(runs_root):
    assert [r["name"] for r in list_runs(runs_root, status="interrupted", sort="name")] == ["ctrl-c", "killed"]
    assert [r["name"] for r in list_runs(runs_root, model="RES*")] == ["killed"]
    on_tensorflow = list_runs(runs_root, backend="tensorflow")
    assert "legacy" in [r["name"] for r in on_tensorflow] and {r["backend"] for r in on_tensorflow} == {"tensorflow"}
    assert [r["name"] for r in list_runs(runs_root, status=["failed", "unknown"], sort="name", reverse=True)] == [
        "legacy", "diverged"]
    by_date = [r["name"] for r in list_runs(runs_root, sort="date")]
    assert by_date[:3] == ["ctrl-c", "killed", "diverged"]  # 2020, 2021, 2022; the others are from today
    by_epochs = [r["name"] for r in list_runs(runs_root, sort="epochs", reverse=True)]
    assert by_epochs[:2] in (["lenet5-tiny-1", "killed"], ["killed", "lenet5-tiny-1"])
    assert set(by_epochs[-3:]) == {"claimed", "photos", "torn"}  # no value: last, whatever the order
    assert [r["name"] for r in list_runs(runs_root / "killed")] == ["killed"]  # a run folder itself
    with pytest.raises(KzooError, match="sort by one of"):
        list_runs(runs_root, sort="accuracy")
    with pytest.raises(KzooError, match="status is one of"):
        list_runs(runs_root, status="done")
    with pytest.raises(KzooError, match="No such folder"):
        list_runs(runs_root / "nowhere")


def test_compare_lists_exactly_the_differences_and_draws_one_png(tmp_path):
    from PIL import Image

    a = _hand_run(tmp_path / "a", epochs_done=2, config={"versions": {"keras": "3.15.1", "torch": "2.13"}})
    b = _hand_run(tmp_path / "b", epochs_done=3, epochs=5, config={
        "lr": 0.01, "options": {"pool": "avg"}, "versions": {"keras": "3.15.1", "torch": "2.14"}, "seed": 7})
    png = tmp_path / "compare.png"
    result = compare_runs([a, b], png=png)
    assert result["config"] == {"epochs": [3, 5], "lr": [0.001, 0.01], "options.pool": ["max", "avg"],
                                "versions.torch": ["2.13", "2.14"], "seed": [None, 7]}
    assert result["labels"] == ["a", "b"] and result["png"] == str(png)
    assert result["metrics"]["epochs_done"] == [2, 3] and result["metrics"]["best"] == [0.5, 0.5]
    with Image.open(png) as image:
        image.verify()
        assert image.format == "PNG"
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".kzoo-tmp")]
    json.dumps(result)
    nameless = compare_runs(["a", "b"], root=tmp_path)  # names looked up in the runs folder
    assert nameless["config"] == result["config"] and nameless["png"] is None
    with pytest.raises(KzooError, match="two runs or more"):
        compare_runs([a])
    with pytest.raises(KzooError, match="No such run folder"):
        compare_runs([a, tmp_path / "missing"])


def test_compare_reads_broken_folders_without_a_traceback(runs_root, tmp_path):
    result = compare_runs([runs_root / "lenet5-tiny-1", runs_root / "photos", runs_root / "torn"],
                          png=tmp_path / "c.png")
    assert [r["status"] for r in result["runs"]] == ["finished", "broken", "broken"]
    assert result["metrics"]["test.accuracy"][1:] == [None, None] and os.path.exists(tmp_path / "c.png")


def test_cli_lists_and_compares(cli_runner, runs_root, tmp_path):
    from kzoo_cli.main import cli

    listed = cli_runner.invoke(cli, ["runs", str(runs_root), "--sort", "name"])
    assert listed.exit_code == 0, listed.output
    assert "lenet5-tiny-1" in listed.output and "finished" in listed.output
    assert "photos: broken: not a kzoo run folder" in listed.output and "Traceback" not in listed.output
    as_json = cli_runner.invoke(cli, ["runs", "list", str(runs_root), "--status", "failed", "--json"])
    assert [r["name"] for r in json.loads(as_json.output)] == ["diverged"]
    empty = cli_runner.invoke(cli, ["runs", str(runs_root), "--model", "alexnet"])
    assert empty.exit_code == 0 and "No run" in empty.output
    bad = cli_runner.invoke(cli, ["runs", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2 and "Error: No such folder of runs" in bad.output
    png = tmp_path / "both.png"
    compared = cli_runner.invoke(cli, ["runs", "compare", str(runs_root / "ctrl-c"), str(runs_root / "killed"),
                                       "--png", str(png)])
    assert compared.exit_code == 0, compared.output
    assert "model" in compared.output and "resnet18" in compared.output and png.exists()
    for args in (["runs", "--help"], ["runs", "list", "--help"], ["runs", "compare", "--help"]):
        helped = cli_runner.invoke(cli, args)
        assert helped.exit_code == 0 and "Examples:" in helped.output and "kzoo runs" in helped.output
