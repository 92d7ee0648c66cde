"""What users install: the sdist and the wheel built from it carry every module and data file, and that wheel,
installed (not editable) in a fresh virtual environment next to the example plugin, runs every kind of command.

The editable install of the README's set-up reads the source tree, so it cannot show a module the wheel leaves
out; these tests build the distributions the way a release does (``python -m build``: the sdist, then the wheel
from the unpacked sdist).
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
import pytest

import kzoo

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = {"kzoo": "kzoo", "cli": "kzoo_cli"}  # source folder -> the package it installs as


def _source_files():
    """``{(folder, path inside it)}`` of every file the package is made of: modules and package data."""
    found = set()
    for folder in PACKAGE_FOLDERS:
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                found.add((folder, path.relative_to(ROOT / folder).as_posix()))
    return found


@pytest.fixture(scope="module")
def distributions(tmp_path_factory):
    """The sdist and the wheel built from it, as a release builds them (about 5 s; with the setuptools of the
    ``dev`` extra instead of a fresh isolated build environment, which takes three times as long)."""
    # From a copy without build leftovers: a stale kzoo.egg-info/SOURCES.txt in the working tree puts every file
    # it once listed into the sdist, and from there into the wheel, whatever the package list says.
    source = tmp_path_factory.mktemp("source") / "kzoo"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "venv", "*.egg-info", "build", "dist", "runs", "__pycache__", ".pytest_cache", ".hypothesis"))
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
                          capture_output=True, text=True, cwd=out)  # not the checkout: a build/ folder there
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]  # would shadow the `build` package
    # setuptools frames its deprecations (a dated end of support) and configuration warnings in "!!" lines
    assert "!!" not in done.stdout + done.stderr, done.stdout[-6000:] + done.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def test_the_wheel_holds_every_module_and_data_file_and_nothing_else(distributions):
    _, wheel = distributions
    version = kzoo.__version__
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    dist_info = f"kzoo-{version}.dist-info"
    expected = {f"{PACKAGE_FOLDERS[folder]}/{path}" for folder, path in _source_files()}
    files = {name for name in names if not name.startswith(f"{dist_info}/")}
    assert sorted(expected - files) == [], "left out of the wheel"
    assert sorted(files - expected) == [], "in the wheel but not in the source tree"
    assert {name.split("/")[0] for name in names} == {"kzoo", "kzoo_cli", dist_info}  # no top-level cli or plugins
    assert any(path.startswith("data/embedded/") for _, path in _source_files())
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    assert "kzoo = kzoo_cli.main:main" in entry_points
    assert wheel.name == f"kzoo-{version}-py3-none-any.whl"


def test_the_sdist_holds_every_module_and_data_file(distributions):
    sdist, _ = distributions
    top = f"kzoo-{kzoo.__version__}"
    with tarfile.open(sdist) as archive:
        names = {name for name in archive.getnames()}
    missing = sorted(f"{folder}/{path}" for folder, path in _source_files() if f"{top}/{folder}/{path}" not in names)
    assert missing == []
    assert {f"{top}/{name}" for name in ("setup.py", "pyproject.toml", "README.md", "MANIFEST.in")} <= names
    assert not any(name.startswith(f"{top}/tests/") for name in names)  # no half test suite without its conftest


def test_version_is_the_installed_distribution_s(cli_runner):
    import importlib.metadata

    from kzoo_cli.main import cli

    result = cli_runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"kzoo, version {importlib.metadata.version('kzoo')}"
    assert importlib.metadata.version("kzoo") == kzoo.__version__  # the [project] version is read from kzoo


# --- the installed wheel -------------------------------------------------------------------------------------


def _readme_torch_pin():
    """The CPU torch pin of the README's set-up command, so the test installs what users are told to."""
    return re.search(r"torch==[0-9.]+", (ROOT / "README.md").read_text()).group(0)


class Installed:
    """A fresh virtual environment holding the wheel, its ``export`` extra and the example plugin."""

    def __init__(self, venv, work):
        self.venv, self.work = venv, work
        self.env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
        self.env.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", KERAS_BACKEND="torch",
                        VIRTUAL_ENV=str(venv))

    def run(self, *args):
        """Run a command in the venv, outside the source tree; its stdout."""
        done = subprocess.run(list(args), cwd=self.work, env=self.env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        return done.stdout

    def kzoo(self, *args):
        return self.run(str(self.venv / "bin" / "kzoo"), *args)


@pytest.fixture(scope="module")
def installed(distributions, tmp_path_factory):
    """The wheel installed non-editable with ``pip`` in a new venv (1-3 min, most of it unpacking torch)."""
    _, wheel = distributions
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile"]
    done = subprocess.run([*pip, _readme_torch_pin(), f"{wheel}[export]", str(ROOT / "plugins" / "kzoo-mobilenet")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return Installed(venv, tmp_path_factory.mktemp("work"))


@pytest.fixture(scope="module")
def installed_run(installed):
    """A one-epoch LeNet-5 run on 256 embedded digits, trained by the installed ``kzoo``."""
    installed.kzoo("train", "lenet5", "--epochs", "1", "--limit", "256", "--batch-size", "64",
                   "--output", "run", "--quiet")
    return installed.work / "run"


@pytest.mark.slow
def test_installed_kzoo_is_the_wheel_s(installed):
    code = ("import importlib.util, kzoo, kzoo_cli, kzoo_mobilenet; "
            "print(kzoo.__file__, kzoo_cli.__file__, kzoo_mobilenet.__file__, "
            "importlib.util.find_spec('cli'), importlib.util.find_spec('plugins'))")
    out = installed.run(str(installed.venv / "bin" / "python"), "-c", code).split()
    site = str(installed.venv)
    assert all(path.startswith(site) and "site-packages" in path for path in out[:3]), out
    assert out[3:] == ["None", "None"]
    assert installed.kzoo("--version").strip() == f"kzoo, version {kzoo.__version__}"


@pytest.mark.slow
def test_installed_wheel_trains_evaluates_predicts_and_exports(installed, installed_run):
    state = json.loads((installed_run / "state.json").read_text())
    assert (installed_run / "last.keras").exists() and state

    report = json.loads(installed.kzoo("evaluate", str(installed_run), "--limit", "100", "--json"))
    assert report["samples"] == 100 and 0 <= report["accuracy"] <= 1

    from PIL import Image

    digit = installed.work / "digit.png"
    Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype("uint8")).save(digit)
    predictions = json.loads(installed.kzoo("predict", str(installed_run), str(digit), "--top-k", "2", "--json"))
    assert len(predictions) == 1

    out = installed.kzoo("export", str(installed_run), "--format", "onnx", "--limit", "50")
    assert "ok" in out and list(installed_run.glob("*.onnx"))


@pytest.mark.slow
def test_installed_wheel_converts_torchvision_weights(installed, torchvision):
    import torch

    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    torch.save(reference.state_dict(), installed.work / "resnet18.pth")
    installed.kzoo("build", "resnet18", "--weights", "resnet18.pth", "--input-shape", "64,64,3",
                   "--num-classes", "10", "--output", "r18.keras")

    model = kzoo.load_model(str(installed.work / "r18.keras"))
    x = np.random.default_rng(0).random((2, 64, 64, 3), dtype="float32")
    mean, std = np.array([0.485, 0.456, 0.406], "float32"), np.array([0.229, 0.224, 0.225], "float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(((x - mean) / std).transpose(0, 3, 1, 2))).softmax(-1).numpy()
    np.testing.assert_allclose(np.asarray(model.predict(x, verbose=0)), expected, atol=1e-5)


@pytest.mark.slow
def test_installed_plugin_passes_the_check(installed):
    report = json.loads(installed.kzoo("plugins", "--check", "--strict", "--json"))
    rows = {row["distribution"]: row for row in report["distributions"]}
    assert rows["kzoo-mobilenet"]["status"] == "ok", rows["kzoo-mobilenet"]
    assert {"mobilenet_v1", "squeezenet1_1"} <= set(rows["kzoo-mobilenet"]["models"])
