"""The tensorflow engine (several train steps per ``tf.function`` call) trains exactly like ``fit``.

Correctness only: nothing here is timed (throughput lives in ``benchmarks/train_throughput.py``).
"""

import json
import zipfile

import keras
import numpy as np
import pytest

import kzoo
from kzoo.engine.loops import FitLoop, TensorflowLoop, choose_loop, steps_per_call

tensorflow_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                     reason="the tf engine needs the tensorflow backend")
SMALL = dict(limit=2000, batch_size=64, quiet=True, val_split=0.1, epochs=1, seed=0)


def test_small_models_group_steps_and_large_ones_do_not():
    small = kzoo.create_model("lenet5", input_shape=(28, 28, 1), num_classes=10)  # ~0.4 MMACs per sample
    large = kzoo.create_model("resnet18", input_shape=(28, 28, 1), num_classes=10, small_stem=True)  # ~456
    assert steps_per_call(small, 64) == 16
    assert steps_per_call(large, 64) == 1
    assert steps_per_call(small, 64, accelerator=True) == 16
    middle = kzoo.create_model("convnet2", input_shape=(28, 28, 1), num_classes=10)  # ~14 MMACs per sample
    assert steps_per_call(middle, 8) == int(1e9 // (8 * 13_808_400))  # ~9 steps: ~1 GMAC per call


def test_the_tf_engine_is_refused_elsewhere_with_a_message():
    backend = keras.backend.backend()
    if backend == "tensorflow":
        pytest.skip("available here")
    net = kzoo.create_model("mlp", input_shape=(28, 28, 1), num_classes=10)
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    messages = []
    loop = choose_loop("tf", backend, net, None, notify=messages.append)
    assert type(loop) is FitLoop
    assert messages == [f"--engine tf is not available on the {backend} backend; using fit."]


@tensorflow_only
def test_tf_engine_trains_like_fit_and_saves_portable_files(tmp_path):
    net = kzoo.create_model("lenet5", input_shape=(28, 28, 1), num_classes=10)
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert isinstance(choose_loop("auto", "tensorflow", net, None), TensorflowLoop)  # CPU: tf, not xla

    grouped = kzoo.train("lenet5", engine="tf", output=str(tmp_path / "tf"), **SMALL)
    plain = kzoo.train("lenet5", engine="fit", output=str(tmp_path / "fit"), **SMALL)
    assert grouped["accuracy"] > 0.6 and plain["accuracy"] > 0.6
    assert abs(grouped["accuracy"] - plain["accuracy"]) < 0.03, (grouped["accuracy"], plain["accuracy"])
    assert abs(grouped["loss"] - plain["loss"]) < 0.1
    saved = tmp_path / "tf" / "last.keras"
    with zipfile.ZipFile(saved) as archive:  # torch refuses steps_per_execution > 1: the file must keep 1
        assert json.loads(archive.read("config.json"))["compile_config"]["steps_per_execution"] == 1
    model = kzoo.load_model(str(saved))
    assert int(np.asarray(model.optimizer.iterations)) == -(-1800 // 64)  # every batch is still one step
