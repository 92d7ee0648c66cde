"""Data-parallel torch training (DDP over 2 simulated gloo devices) against one device.

The reference is kzoo's single-device torch engine: the 2-worker run must end with the same weights and log the
same metrics (every global batch is the union of the two workers' halves, DDP averages the gradients), and a run
folder must resume on either number of devices. Each launch starts 2 processes (torch imported in each), so these
tests are slow.
"""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow

# 270 samples: 256 train (8 global batches of 32: equal halves on every step), 14 validation, 270 test
LENET = dict(limit=270, val_split=0.05, batch_size=32, seed=3, quiet=True, schedule="constant")  # a resume keeps its schedule


@pytest.fixture(autouse=True)
def _torch_only(backend):
    if backend != "torch":
        pytest.skip("DDP is the torch backend's engine")


def _weights(run_dir):
    from kzoo.engine.checkpoints import load_model

    return load_model(os.path.join(run_dir, "last.keras"), compile=False).get_weights()


def _assert_same_weights(run_a, run_b, rtol=1e-5):
    for a, b in zip(_weights(run_a), _weights(run_b), strict=True):
        assert np.linalg.norm(a - b) <= rtol * max(np.linalg.norm(b), 1e-12), (a.shape, np.abs(a - b).max())


def _rows(run_dir):
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One device: 1 epoch, and the same run trained straight to 2 epochs."""
    import kzoo

    tmp = tmp_path_factory.mktemp("single")
    one = kzoo.train("lenet5", epochs=1, output=str(tmp / "one"), **LENET)["run_dir"]
    two = kzoo.train("lenet5", epochs=2, output=str(tmp / "two"), **LENET)["run_dir"]
    return one, two


def test_two_workers_match_one_device_then_resume_on_one(single, tmp_path):
    import kzoo
    import yaml

    one, two = single
    result = kzoo.train("lenet5", epochs=1, devices=2, output=str(tmp_path / "ddp"), **LENET)
    ddp = result["run_dir"]
    _assert_same_weights(ddp, one)
    for got, want in zip(_rows(ddp), _rows(one), strict=True):  # global metrics, validation once
        for key in ("loss", "val_loss"):
            assert float(got[key]) == pytest.approx(float(want[key]), rel=1e-5)
        for key in ("accuracy", "val_accuracy"):
            assert float(got[key]) == pytest.approx(float(want[key]), abs=1e-9)
    with open(os.path.join(ddp, "metrics.json")) as handle, open(os.path.join(one, "metrics.json")) as ref:
        final, reference = json.load(handle), json.load(ref)
    assert final["accuracy"] == reference["accuracy"] and final["loss"] == pytest.approx(reference["loss"], rel=1e-5)
    with open(os.path.join(ddp, "config.yaml")) as handle:
        recorded = yaml.safe_load(handle)
    assert recorded["world_size"] == 2 and recorded["engine_used"] == "torch"
    assert result["accuracy"] == final["accuracy"]  # the launcher returns rank 0's result

    kzoo.train(resume=ddp, epochs=2, devices=1)  # 2 workers -> 1 device
    _assert_same_weights(ddp, two)


def test_one_device_run_resumes_on_two_workers(single, tmp_path):
    import shutil

    import kzoo

    one, two = single
    run = str(tmp_path / "resumed")
    shutil.copytree(one, run)
    kzoo.train(resume=run, epochs=2, devices=2)  # 1 device -> 2 workers
    _assert_same_weights(run, two)
    assert len(_rows(run)) == 2


def test_torchrun_trains_as_kzoos_own_launcher(single, tmp_path):
    one, _ = single
    run = tmp_path / "torchrun"
    flags = [f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}") for k, v in LENET.items()]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "kzoo",
               "train", "lenet5", "--epochs", "1", *flags, "--output", str(run)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KERAS_BACKEND": "torch"})
    assert done.returncode == 0, done.stderr
    _assert_same_weights(str(run), one)


def test_a_streamed_image_folder_is_sharded_as_the_arrays_are(tmp_path):
    """ImageBatches (a PyDataset decoded in background threads): 2 workers end with the 1-device weights."""
    from PIL import Image

    import kzoo
    from kzoo.data import load_dataset

    digits = load_dataset("mnist_embedded")
    for i in range(300):  # 256 training images after the folder's validation and test splits
        folder = tmp_path / "digits" / str(int(digits.y_train[i]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(digits.x_train[i]).save(folder / f"{i}.png")
    common = dict(data=str(tmp_path / "digits"), epochs=2, batch_size=16, quiet=True, schedule="constant")
    alone = kzoo.train("lenet5", output=str(tmp_path / "alone"), **common)
    paired = kzoo.train("lenet5", output=str(tmp_path / "paired"), devices=2, **common)
    _assert_same_weights(paired["run_dir"], alone["run_dir"])
    assert paired["accuracy"] == alone["accuracy"]


def _bn_net_accuracy(samples, epochs, batch_size):
    """A small conv net with batch norm trained by kzoo's torch engine (DDP when a launcher started this
    process); rank 0 returns its test accuracy."""
    import keras
    from keras import layers

    from kzoo.data import load_dataset
    from kzoo.engine import distributed
    from kzoo.engine.loops import seed_everything
    from kzoo.engine.torch_loop import FastTorchLoop

    plan = distributed.parse_devices(None, "torch", batch_size)
    distributed.start_worker(plan)
    seed_everything(0)
    data = load_dataset("mnist_embedded")
    x = data.x_train[:samples, ..., None].astype("float32") / 255
    y = data.y_train[:samples]
    inputs = keras.Input((28, 28, 1))
    h = inputs
    for width in (8, 16):
        h = layers.Conv2D(width, 3, use_bias=False)(h)
        h = layers.BatchNormalization(momentum=0.9)(h)  # moving statistics settle within the short run
        h = layers.MaxPooling2D()(layers.ReLU()(h))
    outputs = layers.Dense(10, activation="softmax")(layers.Flatten()(h))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    loop = FastTorchLoop()
    assert loop.supports(model, None)[0]
    loop.run(model, x, y, validation_data=None, epochs=epochs, initial_epoch=0, batch_size=batch_size, callbacks=[])
    if not distributed.is_primary():
        return None
    x_test = data.x_test[..., None].astype("float32") / 255
    return float((model.predict(x_test, batch_size=500, verbose=0).argmax(-1) == data.y_test).mean())


def test_batch_norm_model_reaches_the_single_device_accuracy():
    """Per-device batch-norm statistics (each worker normalizes its half of the batch): within a point."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    args = (4096, 2, 64)
    alone = _bn_net_accuracy(*args)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=2, run_id="bn", rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", max_restarts=0, start_method="spawn")
    paired = elastic_launch(config, _bn_net_accuracy)(*args)[0]
    assert alone > 0.9
    assert abs(paired - alone) <= 0.01, (paired, alone)


@pytest.mark.parametrize("stop", ["kill a worker", "ctrl-c"])
def test_a_dead_worker_or_ctrl_c_stops_every_worker_and_keeps_the_checkpoint(tmp_path, stop):
    run = tmp_path / "stopped"
    command = [sys.executable, "-m", "kzoo", "train", "lenet5", "--devices", "2", "--epochs", "10000", "--limit", "270",
               "--batch-size", "32", "--quiet", "--output", str(run)]
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "KERAS_BACKEND": "torch"}, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not (run / "last.keras").exists():
            assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()
            time.sleep(0.5)
        workers = _workers(launcher.pid)
        if stop == "ctrl-c":
            os.killpg(launcher.pid, signal.SIGINT)  # what the terminal does: every process of the group
        else:
            os.kill(workers[1], signal.SIGKILL)
        stopped_at = time.monotonic()
        _, stderr = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert time.monotonic() - stopped_at < 20
    assert "Traceback" not in stderr, stderr
    if stop == "ctrl-c":
        assert launcher.returncode == 130, stderr
        assert "Interrupted; every worker was stopped." in stderr
    else:
        assert launcher.returncode == 1, stderr
        assert re.search(r"Worker [01] of 2 was killed by signal SIGKILL; every worker was stopped", stderr), stderr
    assert f"is kept; continue with: kzoo train --resume {run}" in stderr
    assert _weights(str(run))  # the last good checkpoint loads
    assert not any(_alive(pid) for pid in workers)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _descendants(pid):
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if parent == pid:
                children += [int(entry)] + _descendants(int(entry))
    return children


def _workers(launcher_pid):
    """The worker processes under the launcher (multiprocessing spawns them; the resource tracker is not one)."""
    workers = []
    for pid in _descendants(launcher_pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if b"spawn_main" in handle.read():
                    workers.append(pid)
        except OSError:
            continue
    assert len(workers) == 2, workers
    return workers


def test_devices_need_the_torch_engine(cli_runner, tmp_path):
    from kzoo_cli.main import cli

    result = cli_runner.invoke(cli, ["train", "lenet5", "--devices", "2", "--engine", "fit", "--epochs", "1",
                                     "--limit", "64", "--output", str(tmp_path / "fit")])
    assert result.exit_code == 2, result.output
    assert "--devices 2 on torch trains with kzoo's torch engine (DDP)" in result.output
