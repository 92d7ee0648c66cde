"""Backend selection happens before keras is imported, with clear errors."""

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
