"""The training engine end to end on the embedded MNIST: run folder, resume, NaN, Ctrl-C, evaluate, predict."""

import csv
import json
import os

import numpy as np
import pytest

import kzoo
from kzoo.engine import callbacks as cb
from kzoo.engine.run_index import describe_run
from kzoo.engine.trainer import TrainingDiverged, TrainingInterrupted

SMALL = dict(limit=600, batch_size=50, quiet=True, val_split=0.2)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "lenet"
    result = kzoo.train("lenet5", epochs=1, output=str(run), **SMALL)
    return run, result


def test_run_folder_holds_everything(trained_run):
    run, result = trained_run
    for name in ("config.yaml", "last.keras", "last.weights.h5", "best.keras", "best.weights.h5",
                 "metrics.csv", "curves.png", "confusion_matrix.png", "metrics.json", "state.json"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["samples"] == 600 and metrics["accuracy"] == pytest.approx(_predicted_accuracy(run, 600), abs=1e-6)
    assert len(metrics["confusion_matrix"]) == 10 and sum(map(sum, metrics["confusion_matrix"])) == 600
    assert result["accuracy"] == metrics["accuracy"]
    import yaml

    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["backend"] and config["seed"] == 0 and "keras" in config["versions"]
    assert config["machine"]["cpu_count"] >= 1 and config["class_names"][0] == "0"


def test_resume_continues_from_the_last_epoch(trained_run, tmp_path):
    import shutil

    run = tmp_path / "resumed"
    shutil.copytree(trained_run[0], run)
    first = kzoo.load_model(str(run / "last.keras"))
    iterations = int(np.asarray(first.optimizer.iterations))
    assert iterations == 10  # 480 training samples / 50 per batch
    kzoo.train(resume=str(run), epochs=2, quiet=True)
    state = json.loads((run / "state.json").read_text())
    assert state["epochs_done"] == 2
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    resumed = kzoo.load_model(str(run / "last.keras"))
    assert int(np.asarray(resumed.optimizer.iterations)) == 2 * iterations  # optimizer state carried on


def test_nan_keeps_the_last_good_checkpoint(trained_run, tmp_path, monkeypatch):
    import shutil

    run = tmp_path / "nan"
    shutil.copytree(trained_run[0], run)
    good = (run / "last.weights.h5").read_bytes()
    original = cb.StopOnNaN.on_epoch_begin

    def diverge(self, epoch, logs=None):  # the weights blow up at the start of epoch 2
        original(self, epoch, logs)
        bias = self.model.get_layer("logits").bias
        bias.assign(np.full(bias.shape, np.nan, "float32"))

    monkeypatch.setattr(cb.StopOnNaN, "on_epoch_begin", diverge)
    with pytest.raises(TrainingDiverged, match="NaN at epoch 2"):
        kzoo.train(resume=str(run), epochs=2, quiet=True)
    assert (run / "last.weights.h5").read_bytes() == good
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 1
    row = describe_run(run)  # kzoo runs
    assert row["status"] == "failed" and row["reason"].startswith("diverged: The loss became NaN at epoch 2")


def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}

    def interrupt(self, batch, logs=None):
        calls["n"] += 1  # the first report inside the epoch (the tf engine reports every few steps)
        if calls["n"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(cb.StopOnNaN, "on_train_batch_end", interrupt)
    run = tmp_path / "interrupted"
    with pytest.raises(TrainingInterrupted, match="--resume") as info:
        kzoo.train("mlp", epochs=1, output=str(run), **SMALL)
    assert info.value.exit_code == 130
    state = json.loads((run / "state.json").read_text())
    assert state["interrupted"] == {"during_epoch": 1} and state["epochs_done"] == 0
    assert (run / "interrupted.keras").exists() and not (run / "last.keras").exists()  # no epoch completed
    assert describe_run(run)["status"] == "interrupted"  # kzoo runs
    monkeypatch.undo()
    kzoo.train(resume=str(run), quiet=True)  # starts epoch 1 again
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 1
    assert [r["epoch"] for r in csv.DictReader(open(run / "metrics.csv"))] == ["0"]


def test_refuses_to_overwrite_a_run(trained_run):
    with pytest.raises(kzoo.KzooError, match="already holds a run"):
        kzoo.train("lenet5", epochs=1, output=str(trained_run[0]), **SMALL)


def test_evaluate_and_predict(trained_run, tmp_path):
    from PIL import Image

    from kzoo.data import load_dataset

    run, result = trained_run
    report = kzoo.evaluate(str(run), limit=600)
    assert report["accuracy"] == pytest.approx(result["accuracy"], abs=1e-6)
    digits = load_dataset("mnist_embedded")
    paths = []
    for i in range(5):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(digits.x_test[i]).save(path)
        paths.append(str(path))
    predictions = kzoo.predict(str(run), paths, top_k=2)
    assert len(predictions) == 5 and len(predictions[0]["top"]) == 2
    hits = sum(p["top"][0]["class"] == int(y) for p, y in zip(predictions, digits.y_test[:5]))
    assert hits >= 3
    assert predictions[0]["top"][0]["name"] == str(predictions[0]["top"][0]["class"])


def test_corrupt_and_unsafe_checkpoints(tmp_path, trained_run):
    from kzoo.errors import CheckpointError

    broken = tmp_path / "broken.keras"
    broken.write_bytes((trained_run[0] / "last.keras").read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        kzoo.load_model(str(broken))
    with pytest.raises(CheckpointError, match="No such checkpoint"):
        kzoo.load_model(str(tmp_path / "missing.keras"))
    import keras

    inputs = keras.Input((2,))
    lam = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    lam.save(tmp_path / "lambda.keras")
    with pytest.raises(CheckpointError, match="--trust"):
        kzoo.load_model(str(tmp_path / "lambda.keras"))
    assert kzoo.load_model(str(tmp_path / "lambda.keras"), trust=True) is not None


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    from kzoo.engine.checkpoints import atomic_save_model

    target = tmp_path / "m.keras"
    target.write_bytes(b"good")

    class Exploding:
        def save(self, path):
            open(path, "wb").write(b"half")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_save_model(Exploding(), str(target))
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


def test_config_file_and_explicit_arguments(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("model: mlp\nepochs: 1\nbatch_size: 100\nlimit: 300\nquiet: true\noptions:\n  hidden_sizes: [32]\n")
    result = kzoo.train(config_file=str(config), batch_size=60, output=str(tmp_path / "run"))
    import yaml

    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert stored["batch_size"] == 60 and stored["epochs"] == 1 and stored["options"]["hidden_sizes"] == [32]
    assert result["samples"] == 300
    (tmp_path / "bad.yaml").write_text("epohcs: 3\n")
    with pytest.raises(kzoo.KzooError, match="did you mean epochs"):
        kzoo.train("mlp", config_file=str(tmp_path / "bad.yaml"))


@pytest.mark.parametrize("loss", ["cce", "mse", "mae"])
def test_losses_by_name_and_regularisation(tmp_path, loss):
    result = kzoo.train("mlp", epochs=1, loss=loss, l2=1e-4, l1=1e-5, output=str(tmp_path / loss), **SMALL)
    assert result["accuracy"] == pytest.approx(_predicted_accuracy(tmp_path / loss, 600), abs=1e-6)
    names = {"cce": "categorical_crossentropy", "mse": "mean_squared_error", "mae": "mean_absolute_error"}
    assert kzoo.load_model(str(tmp_path / loss / "last.keras")).loss.name == names[loss]


def _predicted_accuracy(run, count):
    """Accuracy of the run's best checkpoint on the first ``count`` test images, by Keras's own predict."""
    from kzoo.data import load_dataset

    data = load_dataset("mnist_embedded")
    model = kzoo.load_model(str(run / "best.keras"))
    probs = model.predict(data.x_test[:count].astype("float32")[..., None] / 255.0, verbose=0)
    return float(np.mean(probs.argmax(axis=1) == data.y_test[:count]))
