"""keras.distribution.DataParallel on 2 simulated XLA host devices trains like one device
(kzoo.engine.distributed.jax_data_parallel).

Each comparison is against plain ``keras.Model.fit`` with no distribution at all, in the same fresh process
(tests/engine/distributed/replica_runs.py, whose jax data end in an odd batch of 23 samples); the CLI test
against a single-device ``kzoo evaluate``.
"""

import json
import os
import subprocess
import sys

import keras
import pytest
from replica_runs import BATCH, SAMPLES, assert_same_weights

# Every check starts a jax process of its own. The fast one runs with the jax suite; the slow ones (over
# 20 s on 2 cores) run in whichever suite runs slow tests (CI: the torch suite).
jax_suite = pytest.mark.skipif(keras.backend.backend() != "jax", reason="runs with the jax suite")


@jax_suite
def test_two_devices_take_the_one_device_steps_and_checkpoints_cross_over(replica_run):
    weights, scores, _ = replica_run("jax", "equal")
    assert scores["replicas1"] == 1 and scores["replicas2"] == 2  # really replicated over 2 devices
    assert_same_weights(weights["equal2"], weights["equal1"])
    assert abs(scores["accuracy2"] - scores["accuracy1"]) < 1e-6  # global metrics
    assert scores["evaluate2"] == pytest.approx(scores["evaluate1"], rel=1e-5)
    assert_same_weights(weights["resumed1"], weights["equal1"])  # epoch 1 on 2 devices, epoch 2 on 1
    assert_same_weights(weights["resumed2"], weights["equal1"])  # and the reverse


@pytest.mark.slow
def test_batch_norm_takes_global_moments_and_a_stream_trains_alike(replica_run):
    weights, scores, _ = replica_run("jax", "bn_stream")
    assert abs(scores["accuracy_bn2"] - scores["accuracy_bn1"]) <= 0.01
    # one global jit: the moments are those of the global batch, so the 1-device steps (see the module doc)
    assert_same_weights(weights["bn2"], weights["bn1"])
    assert_same_weights(weights["stream2"], weights["stream1"])  # 2 epochs, with a streamed validation
    steps = 2 * -(-SAMPLES['jax'] // BATCH)
    assert scores["stream_steps2"] == scores["stream_steps1"] == steps  # no extra optimizer step
    assert scores["stream_epochs2"] == scores["stream_epochs1"]  # its epoch hook as often as on one device


@pytest.mark.slow
def test_kzoo_train_on_two_devices_agrees_with_a_one_device_evaluation(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    env.pop("XLA_FLAGS", None)
    run = tmp_path / "run"
    common = ["--limit", "301", "--backend", "jax"]  # 301: odd batches in training, validation and test
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
