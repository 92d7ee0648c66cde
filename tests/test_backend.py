"""Backend selection happens before keras is imported, with clear errors."""

import os
import subprocess
import sys

import pytest

from kzoo.backend import requested_backend, set_backend
from kzoo.errors import BackendError


def test_precedence(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert requested_backend("tensorflow") == "tensorflow"
    assert requested_backend() == "jax"
    monkeypatch.delenv("KERAS_BACKEND")
    assert requested_backend() == "torch"


def test_unknown_backend():
    with pytest.raises(BackendError, match="Unknown backend 'mxnet'"):
        set_backend("mxnet")


def test_switching_after_import_is_refused(backend):
    other = "tensorflow" if backend != "tensorflow" else "torch"
    with pytest.raises(BackendError, match="already running"):
        set_backend(other)


def test_missing_framework_names_the_extra(tmp_path):
    # a sitecustomize that hides jax makes the backend look uninstalled in a child process
    (tmp_path / "sitecustomize.py").write_text(
        "import importlib.util as u\n_orig = u.find_spec\n"
        "u.find_spec = lambda name, *a: None if name == 'jax' else _orig(name, *a)\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "kzoo", "summary", "mlp", "--backend", "jax"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert "pip install 'kzoo[jax]'" in result.stderr and "Traceback" not in result.stderr


STARTED_WITH_ONE_DEVICE = {  # a process where the framework already runs on one (CPU) device
    "tensorflow": "import tensorflow as tf; tf.constant(1.0) + 1",
    "jax": "import jax; jax.numpy.ones(1) + 1",
}


@pytest.mark.parametrize("framework", ["tensorflow", "jax"])
def test_configure_devices_gives_n_devices_before_start_and_refuses_after(framework, backend):
    if backend != framework:
        pytest.skip(f"runs with the {framework} suite")
    probe = ("import jax; print(len(jax.devices()))" if framework == "jax"
             else "import tensorflow as tf; print(len(tf.config.list_logical_devices('CPU')))")
    code = (f"from kzoo.backend import configure_devices; configure_devices({framework!r}, 2); {probe}\n"
            f"configure_devices({framework!r}, 2)\n"  # again, with as many: nothing to do
            f"try:\n    configure_devices({framework!r}, 3)\nexcept Exception as e:\n"
            f"    print(type(e).__name__, e)\n")
    late = (f"{STARTED_WITH_ONE_DEVICE[framework]}\nfrom kzoo.backend import configure_devices\n"
            f"try:\n    configure_devices({framework!r}, 2)\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    for source, expected in ((code, "2\nBackendError --devices 3:"), (late, "BackendError --devices 2:")):
        result = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.startswith(expected), result.stdout
        assert "already started" in result.stdout and "cannot" in result.stdout


@pytest.mark.parametrize("cores,load,threads", [
    (2, 0.0, 2), (2, 0.7, 2), (2, 1.5, 1), (2, 3.6, 1), (2, 9.0, 1), (16, 4.2, 12), (16, 0.3, 16), (1, 0.0, 1),
])
def test_default_threads_are_the_cores_the_load_leaves_idle(cores, load, threads):
    from kzoo.backend import default_threads

    assert default_threads(cores, load) == threads


def test_choose_threads_reads_the_load_average_unless_told(monkeypatch):
    import kzoo.backend as kb

    monkeypatch.setattr(kb, "available_cores", lambda: 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (5.5, 1.0, 1.0))
    assert kb.choose_threads() == 3
    assert kb.choose_threads(6) == 6  # --threads wins, even above the idle cores
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(BackendError, match="threads must be an integer >= 1"):
            kb.choose_threads(bad)


def test_threads_reach_the_framework(backend, tmp_path):
    """torch in this process (``kzoo.train``, ``kzoo evaluate`` through the CLI); tensorflow and jax in a fresh
    process, where the setting must come before their runtimes start."""
    if backend == "torch":
        import torch
        import yaml

        import kzoo
        from kzoo_cli.main import cli
        from click.testing import CliRunner

        before = torch.get_num_threads()
        try:
            kzoo.train("mlp", threads=1, limit=64, epochs=1, quiet=True, output=str(tmp_path / "run"))
            assert torch.get_num_threads() == 1
            assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["threads_used"] == 1
            torch.set_num_threads(2)
            result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "run"), "--threads", "1", "--json"])
            assert result.exit_code == 0, result.output
            assert torch.get_num_threads() == 1
        finally:
            torch.set_num_threads(before)
        return
    probe = {"tensorflow": "import tensorflow as tf; tf.constant(1.0) + 1; "
                           "print(tf.config.threading.get_intra_op_parallelism_threads())",
             "jax": "import jax; jax.numpy.ones(1) + 1; import os; print(os.environ['XLA_FLAGS'])"}[backend]
    code = f"from kzoo.backend import set_backend, use_threads; print(use_threads(set_backend({backend!r}), 1)); {probe}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "1"
    assert out[1] == ("1" if backend == "tensorflow" else "--xla_cpu_multi_thread_eigen=false")


def test_bad_threads_exit_2_with_an_error(cli_runner, tmp_path):
    from kzoo_cli.main import cli

    result = cli_runner.invoke(cli, ["train", "mlp", "--threads", "0"])
    assert result.exit_code == 2 and "--threads" in result.output
    (tmp_path / "run.yaml").write_text("model: mlp\nthreads: two\n")
    result = cli_runner.invoke(cli, ["train", "--config", str(tmp_path / "run.yaml")])
    assert result.exit_code == 2 and "Error: threads must be an integer >= 1. Received: threads='two'." in result.output
