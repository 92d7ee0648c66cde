"""Every ``.keras`` file kzoo writes loads in a plain Keras program with the line the README documents.

A trained run's checkpoint (trained on torch, loaded on the suite's backend), a ``kzoo build --weights FILE.pth``
file and a plugin model are each loaded in a fresh Python process that imports keras and runs nothing of kzoo but
``kzoo.load_model``; what that model computes is compared with a reference that does not read the file's config
(torchvision's own model, or the architecture rebuilt from its builder with the file's weights).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import kzoo

# The README's "Loading kzoo files in your own code", then the model's outputs on an input and, for a
# compiled file, one training step (the optimizer must belong to the backend it was loaded on).
PLAIN_PROGRAM = """
import sys
import numpy as np
import keras
import kzoo

model = kzoo.load_model(sys.argv[1])
x = np.load(sys.argv[2])
np.save(sys.argv[3], keras.ops.convert_to_numpy(model(x, training=False)))
if getattr(model, "optimizer", None) is not None:  # a compiled file (a checkpoint)
    model.train_on_batch(x, np.zeros(len(x), "int64"))
keras.saving.load_model(sys.argv[1], compile=False)  # the layers are registered now (README)
print(keras.backend.backend(), type(getattr(model, "optimizer", None)).__module__, "torch" in sys.modules)
"""


def _load_in_plain_keras(path, x, tmp_path):
    """Outputs of ``kzoo.load_model(path)`` on ``x`` in a fresh process, and what the process printed."""
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run([sys.executable, "-c", PLAIN_PROGRAM, str(path), str(tmp_path / "x.npy"),
                           str(tmp_path / "y.npy")], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return np.load(tmp_path / "y.npy"), done.stdout.split()


@pytest.fixture(scope="module")
def torch_trained_run(tmp_path_factory):
    """A one-epoch LeNet-5 run trained by ``kzoo train`` on torch (its optimizer is torch's own class)."""
    pytest.importorskip("torch")
    run = tmp_path_factory.mktemp("runs") / "lenet5"
    done = subprocess.run([sys.executable, "-m", "kzoo", "train", "lenet5", "--backend", "torch", "--epochs", "1",
                           "--limit", "128", "--batch-size", "64", "--output", str(run), "--quiet"],
                          capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": "torch"}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return run


def test_a_checkpoint_trained_on_torch_loads_and_trains_on_this_backend(torch_trained_run, backend, tmp_path):
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype="float32")
    outputs, (loaded_on, optimizer_module, torch_imported) = _load_in_plain_keras(
        torch_trained_run / "last.keras", x, tmp_path)

    reference = kzoo.create_model("lenet5", input_shape=(28, 28, 1), num_classes=10)
    reference.load_weights(str(torch_trained_run / "last.weights.h5"))
    np.testing.assert_allclose(outputs, np.asarray(reference.predict(x, verbose=0)), atol=1e-5)
    assert loaded_on == backend
    if backend != "torch":  # Keras saved torch's Adam class; the file gets this backend's own optimizer
        assert "backend.torch" not in optimizer_module and torch_imported == "False"


def test_a_model_built_from_torchvision_weights_loads(torchvision, tmp_path):
    import torch

    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    path = kzoo.build("resnet18", str(tmp_path / "r18.keras"), input_shape=(64, 64, 3), num_classes=10,
                      weights=str(tmp_path / "resnet18.pth"))  # what `kzoo build --weights` runs

    x = np.random.default_rng(0).random((2, 64, 64, 3), dtype="float32")
    outputs, _ = _load_in_plain_keras(path, x, tmp_path)
    mean, std = np.array([0.485, 0.456, 0.406], "float32"), np.array([0.229, 0.224, 0.225], "float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(((x - mean) / std).transpose(0, 3, 1, 2))).softmax(-1).numpy()
    np.testing.assert_allclose(outputs, expected, atol=1e-5)


def test_a_plugin_model_with_a_plugin_layer_loads(tmp_path):
    pytest.importorskip("kzoo_mobilenet")
    path = kzoo.build("squeezenet1_1", str(tmp_path / "squeezenet.keras"), input_shape=(64, 64, 3), num_classes=5)

    x = np.random.default_rng(0).random((2, 64, 64, 3), dtype="float32")
    outputs, _ = _load_in_plain_keras(path, x, tmp_path)
    reference = kzoo.create_model("squeezenet1_1", input_shape=(64, 64, 3), num_classes=5)
    reference.load_weights(str(path))
    import keras

    assert "kzoo_mobilenet>Fire" in {keras.saving.get_registered_name(type(layer)) for layer in reference.layers}
    np.testing.assert_allclose(outputs, np.asarray(reference.predict(x, verbose=0)), atol=1e-5)

