"""Fine-tuning torchvision weights on real images (Fashion-MNIST from ../shared, 28x28x1): ``--freeze-backbone``
leaves every frozen weight bit-identical and trains the head; ``--unfreeze-at`` then trains everything, also
after ``--resume``."""

import os

import numpy as np
import pytest
import yaml
from weights_reference import randomize_batch_norm

import kzoo

RUN = {"data": "fashion_mnist", "limit": 128, "batch_size": 64, "quiet": True}


@pytest.fixture
def resnet18_pth(torchvision, tmp_path):
    import torch

    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None, num_classes=10)  # Fashion-MNIST's 10 classes
    randomize_batch_norm(reference)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    return str(path)


def _weights(model):
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def test_freeze_backbone_trains_only_the_head(resnet18_pth, shared_datasets, tmp_path, capsys):
    start = _weights(kzoo.create_model("resnet18", input_shape=(28, 28, 1), num_classes=10, weights=resnet18_pth))
    assert "summed over the 3 input channels" in capsys.readouterr().err
    result = kzoo.train("resnet18", data_dir=str(shared_datasets / "fashion-mnist"), weights=resnet18_pth,
                        freeze_backbone=True, epochs=1, output=str(tmp_path / "run"), **RUN)
    tuned = _weights(kzoo.load_model(os.path.join(result["run_dir"], "last.keras")))
    assert tuned.keys() == start.keys()
    for name, arrays in start.items():
        for before, after in zip(arrays, tuned[name]):
            if name == "logits":
                assert not np.array_equal(before, after), "the head did not train"
            else:
                np.testing.assert_array_equal(after, before, err_msg=f"frozen layer {name} changed")
    with open(os.path.join(result["run_dir"], "config.yaml"), encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    assert config["freeze_backbone"] is True and config["weights"] == resnet18_pth


@pytest.mark.slow
def test_unfreeze_at_trains_every_layer_after_resume(resnet18_pth, shared_datasets, tmp_path):
    run_dir = str(tmp_path / "run")
    kzoo.train("resnet18", data_dir=str(shared_datasets / "fashion-mnist"), weights=resnet18_pth,
               freeze_backbone=True, unfreeze_at=1, epochs=1, output=run_dir, lr=1e-2, **RUN)
    frozen = _weights(kzoo.load_model(os.path.join(run_dir, "last.keras")))
    kzoo.train(resume=run_dir, epochs=2)
    unfrozen = _weights(kzoo.load_model(os.path.join(run_dir, "last.keras")))
    changed = [name for name in frozen if not all(np.array_equal(a, b) for a, b in zip(frozen[name], unfrozen[name]))]
    assert set(changed) == set(frozen), f"still frozen after --unfreeze-at: {sorted(set(frozen) - set(changed))}"
    with open(os.path.join(run_dir, "metrics.csv"), encoding="utf-8") as handle:
        assert len(handle.read().strip().splitlines()) == 3  # header + both epochs
