"""``--devices``: what it means on this machine, and the messages for what it cannot mean (exit 2, no traceback).

These checks run before any model is built or any worker started, on every backend.
"""

import os

import pytest

from kzoo.engine import distributed
from kzoo.errors import OptionError
from kzoo_cli.main import cli


@pytest.fixture
def no_gpu(backend):
    if distributed.accelerator_count(backend):
        pytest.skip("the machine has GPUs")
    return backend


@pytest.mark.parametrize("devices, extra, message", [
    ("0", [], "--devices needs at least one device. Received: devices='0'."),
    ("1000", [], "--devices 1000: this machine has no GPU, and simulates at most one device per CPU core"),
    ("two", [], "--devices takes a number of devices, 'all', or device ids such as 0,1. Received: devices='two'."),
    ("0,1", [], "--devices 0,1 names GPU ids, but this machine has no GPU"),
    ("2", ["--batch-size", "63"], "--batch-size 63 is the global batch and must split evenly over 2 devices; "
                                  "use 62 or 64."),
])
def test_impossible_devices_are_refused_before_training(cli_runner, no_gpu, tmp_path, devices, extra, message):
    if devices == "2" and (os.cpu_count() or 1) < 2:
        pytest.skip("needs 2 cores to simulate 2 devices")
    result = cli_runner.invoke(cli, ["train", "lenet5", "--devices", devices, *extra, "--epochs", "1",
                                     "--output", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert f"Error: {message}" in " ".join(result.output.split())
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert not (tmp_path / "run").exists()  # nothing claimed


def test_sync_bn_on_torch_cpu_says_why(cli_runner, no_gpu, tmp_path):
    if no_gpu != "torch" or (os.cpu_count() or 1) < 2:
        pytest.skip("torch's SyncBatchNorm on a CPU-only machine")
    result = cli_runner.invoke(cli, ["train", "lenet5", "--devices", "2", "--sync-bn", "--output", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "torch synchronizes batch norm (SyncBatchNorm) on CUDA GPUs only" in " ".join(result.output.split())


def test_plans_on_a_machine_without_gpu(no_gpu):
    assert distributed.parse_devices(None, no_gpu) == distributed.DevicePlan(no_gpu, 1)
    assert distributed.parse_devices("1", no_gpu, batch_size=7).count == 1
    assert distributed.parse_devices("all", no_gpu) == distributed.DevicePlan(no_gpu, 1)
    if (os.cpu_count() or 1) >= 2:
        assert distributed.parse_devices(2, no_gpu, batch_size=64) == distributed.DevicePlan(no_gpu, 2, simulated=True)


def test_under_torchrun_the_launcher_fixes_the_world(monkeypatch, no_gpu):
    for name, value in {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    assert distributed.world() == (3, 4, 1) and not distributed.is_primary()
    assert distributed.parse_devices(None, no_gpu).count == 4
    assert distributed.parse_devices("2", no_gpu).count == 4  # the processes of this node
    with pytest.raises(OptionError, match="disagrees with the 2 processes per node that torchrun started"):
        distributed.parse_devices("3", no_gpu)
    with pytest.raises(OptionError, match="must split evenly over 4 devices; use 96 or 100"):
        distributed.parse_devices(None, no_gpu, batch_size=98)


def test_outside_a_launcher_this_process_is_the_only_one(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.world() == (0, 1, 0) and distributed.is_primary() and not distributed.in_worker()


def test_scale_lr_multiplies_the_learning_rate_by_the_devices():
    import keras

    from kzoo.engine import config as cfg
    from kzoo.engine.trainer import make_optimizer

    given = cfg.resolve({"model": "lenet5", "lr": 0.01, "optimizer": "sgd"})
    scaled = cfg.resolve({"model": "lenet5", "lr": 0.01, "optimizer": "sgd", "scale_lr": True})
    rate = lambda optimizer: float(keras.ops.convert_to_numpy(optimizer.learning_rate))  # noqa: E731
    assert rate(make_optimizer(given, 10, world_size=4)) == pytest.approx(0.01)  # as given by default
    assert rate(make_optimizer(scaled, 10, world_size=4)) == pytest.approx(0.04)
    assert rate(make_optimizer(scaled, 10, world_size=1)) == pytest.approx(0.01)
    with pytest.raises(OptionError, match="scale_lr must be true or false"):
        cfg.resolve({"model": "lenet5", "scale_lr": "yes"})


@pytest.mark.slow  # starts two torch workers
def test_a_model_only_the_single_device_torch_loop_trains_is_refused(no_gpu, tmp_path):
    """seq2seq (two inputs, masks) trains with the masked torch loop, which has no DDP: --devices says so."""
    import subprocess
    import sys

    if no_gpu != "torch" or (os.cpu_count() or 1) < 2:
        pytest.skip("the torch launcher with 2 simulated devices")
    result = subprocess.run([sys.executable, "-m", "kzoo", "train", "seq2seq", "--devices", "2", "--limit", "64",
                             "--epochs", "1", "--quiet", "--output", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "KERAS_BACKEND": "torch"})
    assert result.returncode == 2, result.stderr
    assert "cannot train seq2seq" in result.stderr and "Traceback" not in result.stderr
