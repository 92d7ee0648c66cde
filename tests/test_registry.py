"""The entry-point registry: listing without imports, name resolution, options, clashes."""

import subprocess
import sys

import pytest

import kzoo
from kzoo.errors import OptionError, PluginError, UnknownNameError
from kzoo.registry import models, read_module_metadata
from plugin_factory import make_distribution

TINY_MODEL = '''
"""A tiny plugin model."""
MODEL_CARD = {"family": "tiny", "task": "image_classification", "input_shape": (8, 8, 1), "num_classes": 2,
              "paper": "none", "small_inputs": "any size"}
SPECS = {"lenet5": {"description": "an impostor", "params": 1}, "tiny": {"description": "tiny", "params": 1}}

def tiny(*, input_shape=None, num_classes=None):
    import keras
    inputs = keras.Input(input_shape or (8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes or 2, activation="softmax")(x), name="tiny")

lenet5 = tiny
'''


@pytest.fixture
def fresh_registry():
    models.reset()
    yield models
    models.reset()


def test_list_models_pattern_and_filters():
    assert kzoo.list_models("resnet*") == ["resnet101", "resnet152", "resnet18", "resnet34", "resnet50"]
    assert set(kzoo.list_models(family="lenet")) == {"lenet5", "convnet2"}
    assert all(kzoo.model_info(n)["task"] == "image_classification" for n in kzoo.list_models(task="image_classification"))
    assert kzoo.list_models("no-such-*") == []


def test_listing_imports_no_framework():
    code = ("import sys, kzoo; [kzoo.model_info(n) for n in kzoo.list_models()]; "
            "heavy = [m for m in ('keras', 'torch', 'tensorflow', 'jax') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_list_importtime_shows_no_framework():
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "kzoo", "list"],
                            capture_output=True, text=True, check=True)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert not imported & {"keras", "torch", "tensorflow", "jax"}, imported & {"keras", "torch", "tensorflow", "jax"}
    assert "lenet5" in result.stdout


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownNameError, match="Did you mean resnet18"):
        kzoo.model_info("resnet19")


def test_metadata_is_read_without_executing_the_module():
    card, specs = read_module_metadata("kzoo.models.lenet")
    assert card["family"] == "lenet" and "lenet5" in specs


def test_info_lists_options_with_defaults():
    info = kzoo.model_info("lenet5")
    assert info["options"]["activation"]["default"] == "relu"
    assert info["options"]["pool"]["choices"][:2] == ["max", "avg"]
    assert info["builtin"] and info["distribution"] == "kzoo" and info["status"] == "ok"


@pytest.mark.parametrize("options,match", [
    ({"activaton": "relu"}, "Did you mean activation"),
    ({"activation": "gelu"}, "must be one of relu, tanh, sigmoid"),
    ({"pool": 3}, "must be one of"),
])
def test_bad_options_are_clear_errors(options, match):
    with pytest.raises(OptionError, match=match):
        kzoo.create_model("lenet5", **options)


def test_bad_shapes_and_classes_are_clear_errors():
    with pytest.raises(OptionError, match="input_shape"):
        kzoo.create_model("mlp", input_shape=(28, 0))
    with pytest.raises(OptionError, match="num_classes"):
        kzoo.create_model("mlp", num_classes=0)


def test_classic_lenet5_is_exactly_selectable():
    model = kzoo.create_model("lenet5", activation="sigmoid", pool="avg")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("AveragePooling2D") == 2 and "MaxPooling2D" not in kinds
    convs = [layer for layer in model.layers if type(layer).__name__ in ("Conv2D", "Dense") and layer.name != "logits"]
    assert {layer.get_config()["activation"] for layer in convs} == {"sigmoid"}
    assert model.input_shape == (None, 32, 32, 1) and model.count_params() == 61_706


def test_plugin_clash_keeps_builtin_and_qualifies_both(tmp_path, monkeypatch, fresh_registry):
    make_distribution(tmp_path, "impostor", models={"lenet5": "impostor_models:lenet5", "tiny": "impostor_models:tiny"},
                      modules={"impostor_models": TINY_MODEL})
    monkeypatch.syspath_prepend(str(tmp_path))
    fresh_registry.reset()
    assert kzoo.model_info("lenet5")["distribution"] == "kzoo"
    assert kzoo.model_info("impostor:lenet5")["distribution"] == "impostor"
    assert "tiny" in kzoo.list_models() and "impostor:lenet5" in kzoo.list_models()
    assert "lenet5" in fresh_registry.clashes
    model = kzoo.create_model("impostor:lenet5")
    assert model.name == "tiny"


def test_two_plugins_with_one_name_is_an_error_naming_both(tmp_path, monkeypatch, fresh_registry):
    for dist in ("plugin-one", "plugin-two"):
        root = tmp_path / dist
        make_distribution(root, dist, models={"shared": f"{dist.replace('-', '_')}_mod:tiny"},
                          modules={f"{dist.replace('-', '_')}_mod": TINY_MODEL})
        monkeypatch.syspath_prepend(str(root))
    fresh_registry.reset()
    with pytest.raises(UnknownNameError, match="plugin-one and plugin-two|plugin-two and plugin-one"):
        kzoo.create_model("shared")
    assert kzoo.create_model("plugin-one:shared").name == "tiny"


def test_broken_plugin_breaks_only_itself(tmp_path, monkeypatch, fresh_registry):
    make_distribution(tmp_path, "broken-plugin", models={"broken": "broken_mod:build"},
                      modules={"broken_mod": "MODEL_CARD = {'family': 'x'}\nimport no_such_module_here\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    fresh_registry.reset()
    assert "broken" in kzoo.list_models() and "lenet5" in kzoo.list_models()
    with pytest.raises(PluginError, match="broken-plugin"):
        kzoo.create_model("broken")
    kzoo.create_model("mlp")  # the rest keeps working


def test_disable_plugins(tmp_path, monkeypatch, fresh_registry):
    make_distribution(tmp_path, "tinyplug", models={"tiny": "tiny_mod:tiny"}, modules={"tiny_mod": TINY_MODEL})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("KZOO_DISABLE_PLUGINS", "1")
    fresh_registry.reset()
    assert "tiny" not in kzoo.list_models() and "lenet5" in kzoo.list_models()
