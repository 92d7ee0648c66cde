"""MirroredStrategy on 2 simulated CPU devices trains like one device (kzoo.engine.distributed.tf_mirrored).

Each comparison is against plain ``keras.Model.fit`` with no strategy at all, in the same fresh process
(tests/engine/distributed/replica_runs.py); the CLI test against a single-device ``kzoo evaluate``.
"""

import json
import os
import subprocess
import sys
import zipfile

import keras
import pytest
from replica_runs import BATCH, SAMPLES, assert_same_weights

# Every check starts a tensorflow process of its own. The fast one runs with the tensorflow suite; the slow
# ones (over 20 s on 2 cores) run in whichever suite runs slow tests (CI: the torch suite).
tf_suite = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="runs with the tensorflow suite")


@tf_suite
def test_two_devices_take_the_one_device_steps_and_checkpoints_cross_over(replica_run):
    weights, scores, _ = replica_run("tensorflow", "equal")
    assert scores["replicas1"] == 1 and scores["replicas2"] == 2  # really mirrored over 2 devices
    assert_same_weights(weights["equal2"], weights["equal1"])
    assert abs(scores["accuracy2"] - scores["accuracy1"]) < 1e-6  # global metrics
    assert scores["evaluate2"] == pytest.approx(scores["evaluate1"], rel=1e-5)
    # epoch 1 on 2 devices, epoch 2 on 1 (and the reverse): the uninterrupted run's weights
    assert_same_weights(weights["resumed1"], weights["equal1"])
    assert_same_weights(weights["resumed2"], weights["equal1"])


@pytest.mark.slow
def test_batch_norm_per_device_and_synchronised_and_a_stream(replica_run):
    weights, scores, out = replica_run("tensorflow", "bn_stream")
    assert abs(scores["accuracy_bn2"] - scores["accuracy_bn1"]) <= 0.01
    assert not (weights["bn2"] == weights["bn1"]).all()  # per-device statistics: not the 1-device steps
    assert scores["synchronized_layers"] == 1
    assert_same_weights(weights["bn2sync"], weights["bn1"])  # global-batch moments: the 1-device steps
    with zipfile.ZipFile(out / "sync_bn.keras") as archive:  # the file stays loadable on torch and jax
        layers = json.loads(archive.read("config.json"))["config"]["layers"]
    norms = [layer["config"] for layer in layers if layer["class_name"] == "BatchNormalization"]
    assert [config["synchronized"] for config in norms] == [False]
    assert_same_weights(weights["stream2"], weights["stream1"])  # 2 epochs, with a streamed validation
    steps = 2 * -(-SAMPLES['tensorflow'] // BATCH)
    assert scores["stream_steps2"] == scores["stream_steps1"] == steps  # no extra optimizer step
    # its epoch hook once per epoch (the next epoch's order is drawn there), plus at most one more after the last
    # epoch when tf.data's prefetch completes the next pass before fit stops (seen once, on a loaded machine: it
    # draws an order nothing trains on); Keras's own single-device fit calls it once or twice per epoch
    # depending on when its enqueuer stops (measured 2 and 3 for these 2 epochs)
    assert scores["stream_epochs2"] in (2, 3) and scores["stream_epochs1"] >= 2


@pytest.mark.slow
def test_kzoo_train_on_two_devices_agrees_with_a_one_device_evaluation(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = tmp_path / "run"
    common = ["--limit", "300", "--backend", "tensorflow"]
    trained = subprocess.run([sys.executable, "-m", "kzoo", "train", "lenet5", "--devices", "2", "--epochs", "1",
                              "--batch-size", "32", "--quiet", "--output", str(run), *common],
                             env=env, capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    config = (run / "config.yaml").read_text()
    assert "world_size: 2" in config and "devices: '2'" in config
    report = json.loads((run / "metrics.json").read_text())
    scored = subprocess.run([sys.executable, "-m", "kzoo", "evaluate", str(run), "--json", *common],
                            env=env, capture_output=True, text=True, timeout=600)
    assert scored.returncode == 0, scored.stderr[-3000:]
    single = json.loads(scored.stdout)
    assert single["accuracy"] == pytest.approx(report["accuracy"], abs=1e-6)
    assert single["loss"] == pytest.approx(report["loss"], rel=1e-4)
