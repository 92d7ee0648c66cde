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
