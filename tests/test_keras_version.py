"""The Keras version gate: the pin in pyproject.toml, refusal of an untested Keras, the override."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

from kzoo.errors import BackendError
from kzoo.keras_version import ALLOW_UNTESTED_ENV, TESTED_KERAS, is_tested, require_tested_keras

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_gate_checks_the_range_pinned_in_pyproject():
    pins = re.findall(r'"keras([<>=!~][^"]*)"', (ROOT / "pyproject.toml").read_text())
    assert pins == [TESTED_KERAS]


@pytest.mark.parametrize("version,tested", [
    ("3.15.1", True), ("3.15.9", True), ("3.15.1.post1", True),
    ("3.15.0", False), ("3.14.2", False), ("3.16.0", False), ("3.16.0rc1", False), ("4.0.0", False),
    ("2.15.0", False), ("nightly", False),
])
def test_is_tested(version, tested):
    assert is_tested(version) is tested


def test_untested_keras_is_refused_with_what_to_do(monkeypatch):
    monkeypatch.delenv(ALLOW_UNTESTED_ENV, raising=False)
    with pytest.raises(BackendError) as info:
        require_tested_keras("3.16.0")
    message = str(info.value)
    assert "found keras 3.16.0" in message and f"pip install 'keras{TESTED_KERAS}'" in message
    assert ALLOW_UNTESTED_ENV in message


def test_the_override_lets_an_untested_keras_through(monkeypatch):
    monkeypatch.setenv(ALLOW_UNTESTED_ENV, "1")
    assert require_tested_keras("3.17.2") == "3.17.2"


def test_the_installed_keras_is_a_tested_one():
    assert is_tested(require_tested_keras())


def _fake_keras_dist(folder, version):
    """A ``keras-VERSION.dist-info`` that shadows the installed Keras's metadata (not its code)."""
    info = folder / f"keras-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: keras\nVersion: {version}\n")


@pytest.mark.parametrize("override,exit_code", [(None, 2), ("1", 0)])
def test_cli_exits_2_on_an_untested_keras_unless_overridden(tmp_path, override, exit_code):
    _fake_keras_dist(tmp_path, "3.99.0")
    env = {k: v for k, v in os.environ.items() if k != ALLOW_UNTESTED_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    if override:
        env[ALLOW_UNTESTED_ENV] = override
    result = subprocess.run([sys.executable, "-m", "kzoo", "summary", "mlp", "--json"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == exit_code, result.stderr
    assert "Traceback" not in result.stderr
    assert "found keras 3.99.0" in result.stderr
    if override is None:
        assert result.stderr.startswith("Error: ") and result.stdout == ""
    else:
        assert result.stderr.startswith("Warning: ") and '"total_params"' in result.stdout
