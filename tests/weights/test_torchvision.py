"""torchvision state_dicts in kzoo: the logits of torchvision's own model code, on the active backend."""

import hashlib

import numpy as np
import pytest
from weights_reference import logits_of, max_relative_difference, randomize_batch_norm

import kzoo
from kzoo.errors import KzooError

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], "float32")
IMAGENET_STD = np.array([0.229, 0.224, 0.225], "float32")
VGG_SMALL = {"width_multiplier": 0.125, "fc_units": 64}  # the VGG classifier still reads a 7x7 map at 224x224


def _torchvision_model(torchvision, name):
    import torch

    torch.manual_seed(0)
    if name.startswith("vgg"):  # torchvision's VGG class and make_layers, at kzoo's VGG_SMALL width
        from torchvision.models import vgg

        cfg = [v if v == "M" else int(v * VGG_SMALL["width_multiplier"]) for v in vgg.cfgs["A"]]
        model = vgg.VGG(vgg.make_layers(cfg, batch_norm=name.endswith("_bn")), num_classes=10)
        units = VGG_SMALL["fc_units"]
        model.classifier[0] = torch.nn.Linear(cfg[-2] * 49, units)
        model.classifier[3] = torch.nn.Linear(units, units)
        model.classifier[6] = torch.nn.Linear(units, 10)
    else:
        model = getattr(torchvision.models, name)(weights=None, num_classes=10)
    randomize_batch_norm(model)
    return model.eval()


CASES = [("resnet18", 64, {}), ("vgg11_bn", 224, VGG_SMALL),
         pytest.param("densenet121", 64, {}, marks=pytest.mark.slow, id="densenet121")]  # ~50 s on 2 shared cores


@pytest.mark.parametrize("name,size,options", CASES, ids=["resnet18", "vgg11_bn", "densenet121"])
def test_logits_match_torchvision(torchvision, tmp_path, name, size, options):
    import torch

    reference = _torchvision_model(torchvision, name)
    path = tmp_path / f"{name}.pth"  # no hash in the name: nothing to check
    torch.save(reference.state_dict(), path)
    model = kzoo.create_model(name, input_shape=(size, size, 3), num_classes=10, weights=str(path), **options)
    x = np.random.default_rng(0).random((2, size, size, 3), dtype="float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(((x - IMAGENET_MEAN) / IMAGENET_STD).transpose(0, 3, 1, 2))).numpy()
    difference = max_relative_difference(logits_of(model, x), expected)
    print(f"fidelity: {name}  torchvision 0.28 (random init, randomised BN)  max relative logit difference "
          f"{difference:.2e}")
    assert difference <= 1e-4
    assert model.get_layer("input_normalization").mode == "imagenet"


def test_other_class_count_reinitialises_head_and_gray_inputs_sum_the_first_kernel(torchvision, tmp_path, capsys):
    import torch

    reference = _torchvision_model(torchvision, "resnet18")
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = kzoo.create_model("resnet18", input_shape=(32, 32, 1), num_classes=3, weights=str(path))
    messages = capsys.readouterr().err
    assert "classifier head is re-initialised" in messages and "summed over the 3 input channels" in messages
    state = reference.state_dict()
    summed = state["conv1.weight"].sum(1, keepdim=True).permute(2, 3, 1, 0).numpy()  # OIHW -> HWIO
    np.testing.assert_allclose(model.get_layer("conv1_conv").get_weights()[0], summed, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(model.get_layer("conv4_block2_1_bn").get_weights()[3],
                                  state["layer3.1.bn1.running_var"].numpy())
    assert model.get_layer("logits").kernel.shape == (512, 3)


def test_densenet_files_with_torchvision_s_old_key_names_convert_alike(torchvision):
    """The published densenet*.pth files name ``denselayerN.norm.1``; torchvision renames them on loading."""
    import re

    from kzoo.weights.torchvision import convert

    state = {key: value.numpy() for key, value in torchvision.models.densenet121(weights=None).state_dict().items()}
    old = {re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", key): value for key, value in state.items()}
    assert any(".norm.1." in key for key in old)
    new_names, old_names = convert(state, "densenet", None), convert(old, "densenet", None)
    assert new_names.keys() == old_names.keys() and len(new_names) == 120 + 121 + 1  # convs, batch norms, head
    for name, arrays in new_names.items():
        assert all(np.array_equal(a, b) for a, b in zip(arrays, old_names[name]))


def test_a_file_for_another_variant_is_refused(torchvision, tmp_path):
    import torch

    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(KzooError, match="does not fit resnet18"):
        kzoo.create_model("resnet18", input_shape=(32, 32, 3), weights=str(path))


def test_a_vgg_built_for_another_size_is_refused(torchvision, tmp_path):
    import torch

    path = tmp_path / "vgg11_bn.pth"
    torch.save(_torchvision_model(torchvision, "vgg11_bn").state_dict(), path)
    with pytest.raises(KzooError, match="7x7 feature map"):
        kzoo.create_model("vgg11_bn", input_shape=(64, 64, 3), num_classes=10, weights=str(path), **VGG_SMALL)


def test_the_sha256_prefix_in_a_published_name_is_checked(tmp_path):
    torch = pytest.importorskip("torch")
    good = tmp_path / "weights.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, good)
    prefix = hashlib.sha256(good.read_bytes()).hexdigest()[:8]
    wrong = tmp_path / "resnet18-f37072fd.pth"
    wrong.write_bytes(good.read_bytes())
    with pytest.raises(KzooError, match=f"sha256 starts with {prefix}, its name says f37072fd"):
        kzoo.create_model("resnet18", input_shape=(32, 32, 3), weights=str(wrong))
    renamed = tmp_path / f"resnet18-{prefix}.pth"
    renamed.write_bytes(good.read_bytes())
    with pytest.raises(KzooError, match="does not fit resnet18"):  # the hash passes; the contents do not fit
        kzoo.create_model("resnet18", input_shape=(32, 32, 3), weights=str(renamed))


@pytest.mark.parametrize("name", [n for n in kzoo.list_models() if kzoo.model_info(n).get("weights")])
def test_published_entries_name_torchvision_files_by_their_hash(name):
    entries = kzoo.model_info(name)["weights"]
    assert "torchvision" in entries
    for publisher, entry in entries.items():
        assert entry["url"].endswith("/" + entry["file"]) and 0 < entry["top1"] < 100
        assert entry["preprocessing"] in ("imagenet", "caffe")
    tv = entries["torchvision"]
    assert tv["file"] == f"{name}-{tv['sha256']}.pth"


def test_offline_download_says_what_to_fetch_and_where(tmp_path, monkeypatch):
    from kzoo.weights import fetch

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    entry = {"file": "resnet18-f37072fd.pth", "url": "http://127.0.0.1:9/models/resnet18-f37072fd.pth"}
    with pytest.raises(KzooError) as error:
        fetch(entry)
    message = str(error.value)
    assert entry["url"] in message and str(tmp_path / "models" / "resnet18-f37072fd.pth") in message


def test_cli_build_with_weights_and_errors(torchvision, tmp_path, cli_runner):
    import torch

    from kzoo_cli.main import cli

    path = tmp_path / "resnet18.pth"
    torch.save(_torchvision_model(torchvision, "resnet18").state_dict(), path)
    output = tmp_path / "r18.keras"
    result = cli_runner.invoke(cli, ["build", "resnet18", "--input-shape", "32,32,3", "--num-classes", "10",
                                     "--weights", str(path), "--output", str(output)])
    assert result.exit_code == 0, result.output
    loaded = kzoo.load_model(str(output))
    np.testing.assert_array_equal(loaded.get_layer("conv1_bn").get_weights()[3],
                                  torch.load(path, weights_only=True)["bn1.running_var"].numpy())
    assert loaded.get_layer("input_normalization").mode == "imagenet"
    result = cli_runner.invoke(cli, ["build", "resnet18", "--weights", str(tmp_path / "missing.pth"),
                                     "--output", str(tmp_path / "x.keras")])
    assert result.exit_code == 2 and "No such weights file" in result.output
