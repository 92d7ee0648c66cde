"""Run folders survive crashes: a kill at any moment, a full disk, concurrent runs (``kzoo.engine.runs``).

A ``kill -9`` leaves on disk exactly what the file system calls made so far wrote; the sweep below copies the run
folder after every rename, unlink, link and fsync of a real training run, which is what a kill at that moment
leaves, and checks that each copy recovers to a consistent commit. Real SIGKILLs (from outside, and from inside a
save) and a real full disk (a tmpfs, where it can be mounted) check the same end to end.
"""

import csv
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import kzoo
from kzoo.engine import checkpoints, runs
from kzoo.engine.checkpoints import DiskFullError
from kzoo.errors import KzooError

SMALL = dict(limit=300, batch_size=60, val_split=0.2, quiet=True, options={"hidden_sizes": [32]})
CLI_SMALL = ["--limit", "300", "--batch-size", "60", "--val-split", "0.2", "--quiet", "-o", "hidden_sizes=32"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _h5_arrays(source):
    """Every dataset of a Keras weights file (a path, or the bytes of one) read with h5py."""
    import io

    import h5py

    arrays = {}
    with h5py.File(io.BytesIO(source) if isinstance(source, bytes) else source, "r") as handle:
        handle.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset)
                          else None)
    return arrays


def _archive_arrays(keras_path):
    import zipfile

    with zipfile.ZipFile(keras_path) as archive:
        return _h5_arrays(archive.read("model.weights.h5"))


def _iterations(keras_path):
    """The optimizer's step counter stored in a ``.keras`` file: which epoch the file ends."""
    return int(_archive_arrays(keras_path)["optimizer/vars/0"])


def _same_arrays(keras_path, weights_path):
    a, b = _archive_arrays(keras_path), _h5_arrays(str(weights_path))
    return sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


def _same_weights(keras_path, weights_path):
    """The ``.weights.h5`` file, loaded by Keras into the ``.keras`` model, holds the same arrays."""
    model = kzoo.load_model(str(keras_path))
    expected = [np.array(w) for w in model.get_weights()]
    model.load_weights(str(weights_path))
    return all(np.array_equal(a, np.array(b)) for a, b in zip(expected, model.get_weights()))


def assert_consistent(run, epochs_done, per_epoch):
    """The run folder's invariants, each checked against something the commit code did not compute."""
    state = json.loads((run / "state.json").read_text())
    assert state["epochs_done"] == epochs_done
    rows = list(csv.DictReader(open(run / "metrics.csv", newline="")))
    assert [int(r["epoch"]) for r in rows] == list(range(epochs_done))  # every epoch exactly once
    values = [float(r[state["monitor"]]) for r in rows]
    best_epoch = 1 + int(np.argmax(values))  # the first epoch reaching the maximum (strictly better wins)
    assert state["best_epoch"] == best_epoch and state["best"] == values[best_epoch - 1]
    # which epoch a .keras file ends is written in it: its optimizer's step counter
    assert _iterations(run / "last.keras") == epochs_done * per_epoch
    assert _iterations(run / "best.keras") == best_epoch * per_epoch
    assert _same_weights(run / "last.keras", run / "last.weights.h5")
    assert _same_weights(run / "best.keras", run / "best.weights.h5")
    leftovers = [p.name for p in run.iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    """A committed one-epoch mlp run, and the optimizer steps one epoch takes."""
    run = tmp_path_factory.mktemp("one") / "run"
    kzoo.train("mlp", epochs=1, output=str(run), **SMALL)
    return run, _iterations(run / "last.keras")


def _copy(one_epoch, tmp_path, name="run"):
    run = tmp_path / name
    shutil.copytree(one_epoch[0], run)
    return run


def test_a_kill_at_any_file_operation_recovers_the_last_commit(one_epoch, tmp_path, monkeypatch):
    run = _copy(one_epoch, tmp_path)
    per_epoch = one_epoch[1]
    snapshots = []

    def snapshot():
        target = tmp_path / f"kill{len(snapshots):03d}"
        shutil.copytree(run, target)
        snapshots.append(target)
        for tmp in target.glob(".kzoo-tmp-*"):  # and as a kill in the middle of writing it leaves it
            half = tmp_path / f"kill{len(snapshots):03d}"
            shutil.copytree(target, half)
            (half / tmp.name).write_bytes(tmp.read_bytes()[: tmp.stat().st_size // 2])
            snapshots.append(half)
            break

    def after(real):
        def call(*args, **kwargs):
            result = real(*args, **kwargs)
            snapshot()
            return result
        return call

    for name in ("replace", "unlink", "link", "fsync"):
        monkeypatch.setattr(os, name, after(getattr(os, name)))
    kzoo.train(resume=str(run), epochs=2, quiet=True)
    monkeypatch.undo()
    assert len(snapshots) > 20
    committed = {1: 0, 2: 0}
    for folder in snapshots:
        state = runs.recover(str(folder))
        done = state["epochs_done"]
        committed[done] += 1
        rows = list(csv.DictReader(open(folder / "metrics.csv", newline="")))
        assert [int(r["epoch"]) for r in rows] == list(range(done)), folder.name
        assert _iterations(folder / "last.keras") == done * per_epoch, folder.name
        assert _iterations(folder / "best.keras") == state["best_epoch"] * per_epoch, folder.name
        assert _same_arrays(folder / "last.keras", folder / "last.weights.h5"), folder.name
        assert _same_arrays(folder / "best.keras", folder / "best.weights.h5"), folder.name
        assert not [p for p in folder.iterdir() if p.name.startswith(".")], folder.name
    assert committed[1] and committed[2]
    # the worst moment: epoch 2's checkpoints and metrics are written, its state.json not yet
    last_uncommitted = [f for f in snapshots if json.loads((f / "state.json").read_text())["epochs_done"] == 1][-1]
    kzoo.train(resume=str(last_uncommitted), epochs=3, quiet=True)
    assert_consistent(last_uncommitted, 3, per_epoch)


def _run_script(script, *args, timeout=600):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


KILL_INSIDE_A_SAVE = """
    import os, signal, sys
    real = os.replace
    seen = []

    def replace(src, dst):
        real(src, dst)
        if str(dst).endswith("last.weights.h5"):
            seen.append(dst)
            if len(seen) == 2:  # epoch 2: both last files replaced, state.json and metrics.csv not yet
                os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace
    from kzoo_cli.main import main
    sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow  # a fresh interpreter imports keras and trains
def test_sigkill_inside_a_save_then_resume(one_epoch, tmp_path):
    run = tmp_path / "run"
    done = _run_script(KILL_INSIDE_A_SAVE, "train", "mlp", "--epochs", "3", "--output", str(run), *CLI_SMALL)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 1
    kzoo.train(resume=str(run), epochs=3, quiet=True)
    assert_consistent(run, 3, one_epoch[1])


@pytest.mark.slow  # a fresh interpreter imports keras and trains
def test_sigkill_from_outside_during_training_then_resume(one_epoch, tmp_path):
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=ROOT)
    process = subprocess.Popen([sys.executable, "-m", "kzoo", "train", "mlp", "--epochs", "200", "--output",
                                str(run), *CLI_SMALL], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        state = run / "state.json"
        if state.exists() and json.loads(state.read_text() or "{}").get("epochs_done", 0) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere in epoch 3 or its save
    assert process.poll() is None, process.stderr.read()[-2000:]
    process.kill()
    process.wait()
    done = runs.read_state(str(run))["epochs_done"]
    assert done >= 2
    kzoo.train(resume=str(run), epochs=done + 1, quiet=True)
    assert_consistent(run, done + 1, one_epoch[1])


def test_ctrl_c_keeps_last_at_the_epoch_boundary(one_epoch, tmp_path, monkeypatch):
    from kzoo.engine import callbacks as cb
    from kzoo.engine.trainer import TrainingInterrupted

    run = _copy(one_epoch, tmp_path)
    before = (run / "last.keras").read_bytes()
    def interrupt(self, batch, logs=None):  # epoch 2, after its first report (the tf loop reports every few steps)
        raise KeyboardInterrupt

    monkeypatch.setattr(cb.StopOnNaN, "on_train_batch_end", interrupt)
    with pytest.raises(TrainingInterrupted, match="end of epoch 1") as info:
        kzoo.train(resume=str(run), epochs=2, quiet=True)
    assert info.value.exit_code == 130
    assert (run / "last.keras").read_bytes() == before
    assert one_epoch[1] < _iterations(run / "interrupted.keras") <= 2 * one_epoch[1]
    assert _same_weights(run / "interrupted.keras", run / "interrupted.weights.h5")
    monkeypatch.undo()
    kzoo.train(resume=str(run), epochs=2, quiet=True)
    assert_consistent(run, 2, one_epoch[1])
    assert not (run / "interrupted.keras").exists()  # superseded by the epoch completed since


def _fail_with_enospc_halfway(write):
    def failing(*args):
        tmp = args[-1]
        with open(tmp, "wb") as handle:
            handle.write(b"half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), tmp)
    return failing


@pytest.mark.parametrize("where", ["keras archive", "weights file"])
def test_disk_full_while_saving_keeps_the_last_good_checkpoint(one_epoch, tmp_path, monkeypatch, where):
    run = _copy(one_epoch, tmp_path)
    before = {name: (run / name).read_bytes() for name in ("last.keras", "last.weights.h5", "state.json")}
    if where == "keras archive":
        monkeypatch.setattr(checkpoints, "_save_keras", _fail_with_enospc_halfway(checkpoints._save_keras))
    else:
        monkeypatch.setattr(shutil, "copyfileobj", lambda *a, **k: (_ for _ in ()).throw(
            OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    with pytest.raises(DiskFullError, match=r"Not enough disk space to write .*last\.(keras|weights\.h5): .* MB free"
                       r".*last\.keras \(epoch 1\) is kept; .*--resume") as info:
        kzoo.train(resume=str(run), epochs=2, quiet=True)
    assert info.value.exit_code == 2
    monkeypatch.undo()
    assert {name: (run / name).read_bytes() for name in before} == before
    assert not [p for p in run.iterdir() if p.name.startswith(".")]
    kzoo.train(resume=str(run), epochs=2, quiet=True)
    assert_consistent(run, 2, one_epoch[1])


def test_free_space_is_checked_before_a_checkpoint_is_written(one_epoch, tmp_path, monkeypatch):
    run = _copy(one_epoch, tmp_path)
    usage = shutil.disk_usage(str(run))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=100_000))
    with pytest.raises(DiskFullError, match=r"0\.1 MB free .* about \d+\.\d MB needed"):
        kzoo.train(resume=str(run), epochs=2, quiet=True)
    assert not [p for p in run.iterdir() if p.name.startswith(".")]


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs (root on Linux only), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root on Linux")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode(errors='replace').strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


FILL_THE_DISK_AFTER_EPOCH_1 = """
    import os, shutil, sys
    from kzoo.engine import callbacks, checkpoints

    if sys.argv[1] == "unchecked":  # no free-space check: the disk fills in the middle of writing
        checkpoints.ensure_free_space = lambda path, needed: None
    real = callbacks.StopOnNaN.on_epoch_begin

    def fill(self, epoch, logs=None):
        real(self, epoch, logs)
        if epoch == 1:
            run = sys.argv[-1]
            with open(os.path.join(os.path.dirname(run), "filler"), "wb") as handle:
                handle.write(b"x" * (shutil.disk_usage(run).free - 100_000))  # less than a checkpoint is left

    callbacks.StopOnNaN.on_epoch_begin = fill
    from kzoo_cli.main import main
    sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow  # a fresh interpreter imports keras and trains
@pytest.mark.parametrize("check", ["checked", "unchecked"])
def test_a_real_full_disk_gives_a_clear_error(one_epoch, small_disk, check):
    run = small_disk / "run"
    done = _run_script(FILL_THE_DISK_AFTER_EPOCH_1, check, "train", "mlp", "--epochs", "2", *CLI_SMALL,
                       "--output", str(run))
    assert done.returncode == 2, done.stderr[-3000:]  # was a segmentation fault (-11) in h5py
    assert "Traceback" not in done.stderr
    assert "Error: Not enough disk space to write" in done.stderr and "MB free" in done.stderr
    assert runs.read_state(str(run))["epochs_done"] == 1
    assert _iterations(run / "last.keras") == one_epoch[1]
    os.unlink(small_disk / "filler")
    kzoo.train(resume=str(run), epochs=2, quiet=True)
    assert_consistent(run, 2, one_epoch[1])


def test_concurrent_runs_never_share_a_folder(tmp_path):
    root = tmp_path / "runs"
    (root / "mlp-x-2").mkdir(parents=True)  # taken already
    barrier = threading.Barrier(12)
    claimed, refused = [], []

    def claim():
        barrier.wait()
        claimed.append(runs.claim_run_dir("mlp", "x", root=str(root)))

    def claim_output():
        barrier.wait()
        try:
            claimed.append(runs.claim_output_dir(str(tmp_path / "shared")))
        except KzooError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=claim) for _ in range(8)] + [threading.Thread(target=claim_output)
                                                                    for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    numbered = sorted(int(p.rsplit("-", 1)[1]) for p in claimed if "shared" not in p)
    assert numbered == [1, 3, 4, 5, 6, 7, 8, 9]
    assert sum("shared" in p for p in claimed) == 1 and len(refused) == 3
    assert all("already holds a run" in message for message in refused)


def test_atomic_writes_flush_the_file_then_the_folder(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace, real_open = os.fsync, os.replace, os.open
    opened = {}

    def tracked_open(path, flags, *args):
        fd = real_open(path, flags, *args)
        opened[fd] = str(path)
        return fd

    monkeypatch.setattr(os, "open", tracked_open)
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", opened[fd])), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", str(b))), real_replace(a, b)))
    target = tmp_path / "state.json"
    checkpoints.atomic_write_text(str(target), "{}")
    monkeypatch.undo()
    assert target.read_text() == "{}"
    assert calls[0][0] == "fsync" and os.path.dirname(calls[0][1]) == str(tmp_path)  # the new file, not yet named
    assert calls[1] == ("replace", str(target)) and calls[2] == ("fsync", str(tmp_path))


def test_parallel_writers_of_one_file_never_mix(tmp_path):
    target = tmp_path / "config.yaml"
    texts = [f"{i}\n" * 20000 for i in range(6)]
    threads = [threading.Thread(target=checkpoints.atomic_write_text, args=(str(target), t)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert target.read_text() in texts
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]
