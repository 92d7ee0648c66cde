"""Broken, clashing, slow and disabled plugins, with throwaway distributions on a temporary ``sys.path`` entry.

Every plugin here is a real ``.dist-info`` folder with an ``entry_points.txt`` next to its modules
(``plugin_factory.make_distribution``); ``importlib.metadata`` finds it exactly as it finds an installed one.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from kzoo.registry import datasets, models
from kzoo_cli.main import cli
from plugin_factory import make_distribution

CARD = '''
MODEL_CARD = {"family": "tiny", "task": "image_classification", "input_shape": (8, 8, 1), "num_classes": 2,
              "paper": "none", "small_inputs": "any size"}
SPECS = {"tiny": {"description": "a tiny dense net", "params": 130}, "lenet5": {"description": "an impostor"}}
'''

TINY = CARD + '''

def tiny(*, input_shape=None, num_classes=None):
    import keras
    inputs = keras.Input(input_shape or (8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes or 2, activation="softmax")(x), name="tiny")

lenet5 = tiny
'''

MISSING_DEPENDENCY = "import no_such_dependency_kzoo\n" + TINY
RAISES_AT_IMPORT = TINY + '\nraise RuntimeError("plugin misconfigured: set TINY_HOME")\n'
BUILDER_RAISES = CARD + '''

def tiny(*, input_shape=None, num_classes=None):
    raise RuntimeError("weights file tiny.bin not found")
'''
SLOW = '''
import os
import time

open(os.environ["KZOO_TEST_MARKER"], "w").close()
time.sleep(5)
''' + TINY


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """``installed(dist, module, source[, entries])``: a throwaway distribution in its own ``sys.path`` folder."""

    def install(dist, module, source, entries=None):
        root = tmp_path / dist
        make_distribution(root, dist, models=entries or {"tiny": f"{module}:tiny"}, modules={module: source})
        monkeypatch.syspath_prepend(str(root))
        for registry in (models, datasets):
            registry.reset()

    yield install
    for registry in (models, datasets):
        registry.reset()


def invoke(runner, *args):
    result = runner.invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    return result


def plugin_row(runner, dist, *extra):
    report = json.loads(invoke(runner, "plugins", "--json", *extra).output)
    return next(r for r in report["distributions"] if r["distribution"] == dist), report


def test_missing_dependency_is_listed_broken_and_the_rest_works(cli_runner, installed):
    installed("broken-dep", "broken_dep_mod", MISSING_DEPENDENCY)
    rows = {row["name"]: row for row in json.loads(invoke(cli_runner, "list", "--json").output)}
    assert rows["tiny"]["status"] == "broken" and "no_such_dependency_kzoo" in rows["tiny"]["error"]
    assert rows["lenet5"]["status"] == "ok"
    table = invoke(cli_runner, "list").output
    assert "tiny" in table and "broken" in table and "lenet5" in table
    row, _ = plugin_row(cli_runner, "broken-dep")
    assert row["status"] == "broken" and "no_such_dependency_kzoo" in row["error"]
    built = invoke(cli_runner, "build", "tiny", "-O", "never.keras")
    assert built.exit_code == 2 and "broken-dep" in built.output and "no_such_dependency_kzoo" in built.output
    assert invoke(cli_runner, "info", "lenet5").exit_code == 0


def test_import_error_breaks_only_its_models(cli_runner, installed):
    installed("raising-plugin", "raising_mod", RAISES_AT_IMPORT)
    assert "tiny" in json.dumps(json.loads(invoke(cli_runner, "list", "--json").output))
    result = invoke(cli_runner, "summary", "tiny")
    assert result.exit_code == 2
    assert "raising-plugin" in result.output and "plugin misconfigured: set TINY_HOME" in result.output
    assert invoke(cli_runner, "summary", "lenet5").exit_code == 0
    row, report = plugin_row(cli_runner, "raising-plugin", "--check")
    assert report["checked"] and row["status"] == "broken"
    assert row["error"] == "tiny: RuntimeError: plugin misconfigured: set TINY_HOME"
    kzoo_row = next(r for r in report["distributions"] if r["distribution"] == "kzoo")
    assert kzoo_row["status"] == "ok"


def test_builder_that_raises_names_its_distribution(cli_runner, installed):
    installed("faulty-builder", "faulty_mod", BUILDER_RAISES)
    result = invoke(cli_runner, "build", "tiny", "-O", "never.keras")
    assert result.exit_code == 2
    assert "faulty-builder" in result.output and "weights file tiny.bin not found" in result.output


def test_clash_keeps_builtin_and_both_stay_reachable(cli_runner, installed):
    installed("impostor", "impostor_mod", TINY, {"lenet5": "impostor_mod:lenet5", "tiny": "impostor_mod:tiny"})
    assert json.loads(invoke(cli_runner, "info", "lenet5", "--json").output)["distribution"] == "kzoo"
    impostor = json.loads(invoke(cli_runner, "info", "impostor:lenet5", "--json").output)
    assert impostor["distribution"] == "impostor" and impostor["qualified_name"] == "impostor:lenet5"
    assert json.loads(invoke(cli_runner, "info", "kzoo:lenet5", "--json").output)["params"] == 61_706
    names = [row.get("qualified_name", row["name"]) for row in json.loads(invoke(cli_runner, "list", "--json").output)]
    assert "lenet5" in names and "impostor:lenet5" in names
    _, report = plugin_row(cli_runner, "impostor")
    [clash] = report["clashes"]
    assert clash["name"] == "lenet5" and clash["kind"] == "model" and clash["plain_name_goes_to"] == "kzoo"
    assert set(clash["distributions"]) == {"kzoo", "impostor"}
    assert set(clash["qualified_names"]) == {"kzoo:lenet5", "impostor:lenet5"}
    assert "name clash" in invoke(cli_runner, "plugins").output
    summary = json.loads(invoke(cli_runner, "summary", "impostor:lenet5", "--json").output)
    assert summary["trainable_params"] == 130


def test_disable_plugins_keeps_builtins(cli_runner, installed, monkeypatch):
    installed("tinyplug", "tinyplug_mod", TINY)
    monkeypatch.setenv("KZOO_DISABLE_PLUGINS", "1")
    models.reset()
    names = [row["name"] for row in json.loads(invoke(cli_runner, "list", "--json").output)]
    assert "tiny" not in names and "lenet5" in names
    result = invoke(cli_runner, "info", "tiny")
    assert result.exit_code == 2 and "Unknown model 'tiny'" in result.output
    report = json.loads(invoke(cli_runner, "plugins", "--json").output)
    assert report["plugins_disabled"] and [r["distribution"] for r in report["distributions"]] == ["kzoo"]


def test_strict_mode_makes_a_broken_plugin_fatal(cli_runner, installed, monkeypatch):
    installed("broken-dep", "broken_dep_mod", MISSING_DEPENDENCY)
    assert invoke(cli_runner, "list").exit_code == 0
    for args in (["list", "--strict"], ["plugins", "--strict"]):
        result = invoke(cli_runner, *args)
        assert result.exit_code == 2 and "broken-dep" in result.output, args
    monkeypatch.setenv("KZOO_STRICT_PLUGINS", "1")
    for args in (["list"], ["plugins"], ["build", "lenet5", "-O", "never.keras"]):
        result = invoke(cli_runner, *args)
        assert result.exit_code == 2 and "broken-dep" in result.output and "no_such_dependency_kzoo" in result.output


def test_listing_never_imports_a_slow_plugin(cli_runner, installed, tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    monkeypatch.setenv("KZOO_TEST_MARKER", str(marker))
    installed("slow-plugin", "slow_mod", SLOW)
    start = time.monotonic()
    rows = {row["name"]: row for row in json.loads(invoke(cli_runner, "list", "--json").output)}
    assert invoke(cli_runner, "info", "tiny").exit_code == 0
    assert invoke(cli_runner, "plugins").exit_code == 0
    assert time.monotonic() - start < 4 and not marker.exists()
    assert rows["tiny"]["status"] == "ok" and rows["tiny"]["distribution"] == "slow-plugin"
    assert "slow_mod" not in sys.modules


LAYER_MODULE = '''
import keras


@keras.saving.register_keras_serializable(package="kzoo_tinylayer")
class Double(keras.layers.Layer):
    def call(self, inputs):
        return inputs * 2
'''

SAVE_SCRIPT = """
import sys, keras
import kzoo_tinylayer
inputs = keras.Input((3,))
keras.Model(inputs, kzoo_tinylayer.Double()(inputs)).save(sys.argv[1])
print("saved")
"""

LOAD_SCRIPT = """
import sys
from kzoo.engine.checkpoints import load_model
from kzoo.errors import CheckpointError
try:
    print(type(load_model(sys.argv[1]).layers[-1]).__name__)
except CheckpointError as exc:
    print("CheckpointError:", exc)
"""


def _python(script, *args, path=None, **env):
    environ = {**os.environ, **env}
    environ.pop("PYTHONPATH", None)
    if path is not None:
        environ["PYTHONPATH"] = str(path)
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=environ,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_saved_plugin_layer_needs_its_plugin(tmp_path):
    plugin = tmp_path / "site"
    make_distribution(plugin, "kzoo-tinylayer", layers={"kzoo_tinylayer": "kzoo_tinylayer"},
                      modules={"kzoo_tinylayer": LAYER_MODULE})
    saved = str(tmp_path / "double.keras")
    assert _python(SAVE_SCRIPT, saved, path=plugin) == "saved"
    assert _python(LOAD_SCRIPT, saved, path=plugin) == "Double"  # the kzoo.layers entry point registers it
    missing = _python(LOAD_SCRIPT, saved)
    assert missing.startswith("CheckpointError:") and "'kzoo_tinylayer>Double'" in missing
    assert "not installed" in missing and "pip install kzoo-tinylayer" in missing
    disabled = _python(LOAD_SCRIPT, saved, path=plugin, KZOO_DISABLE_PLUGINS="1")
    assert "'kzoo-tinylayer'" in disabled and "KZOO_DISABLE_PLUGINS=1" in disabled
