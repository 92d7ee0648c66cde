"""Same weights, same outputs: a model saved on one backend loads on another and agrees to 1e-5 (fp32)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kzoo

# one or more per family, at small inputs; options keep the big ones cheap
CASES = {
    "mlp": {}, "lenet5": {"activation": "sigmoid", "pool": "avg"}, "convnet2": {}, "alexnet": {"dropout": 0.5},
    "vgg11_bn": {"width_multiplier": 0.125, "fc_units": 64}, "nin": {}, "googlenet": {},
    "resnet18": {"small_stem": True}, "densenet_small": {}, "lstm": {"num_layers": 2}, "bigru": {}, "rnn": {},
    "siamese": {},
}

PRODUCER = textwrap.dedent('''
    import json, os, sys
    import keras
    import numpy as np
    import kzoo
    from kzoo.testing import random_inputs, small_input_shape
    cases, out = json.loads(sys.argv[1]), sys.argv[2]
    for name, options in cases.items():
        info = kzoo.model_info(name)
        classes = None if info.get("num_classes", 0) is None else 5
        model = kzoo.create_model(name, input_shape=small_input_shape(info), num_classes=classes, **options)
        x = random_inputs(model, batch_size=3, seed=1)
        y = keras.ops.convert_to_numpy(model(x, training=False))
        model.save_weights(os.path.join(out, name + ".weights.h5"))
        model.save(os.path.join(out, name + ".keras"))
        np.save(os.path.join(out, name + ".npy"), y)
''')


def other_backend(current):
    return "tensorflow" if current != "tensorflow" else "torch"


@pytest.fixture(scope="module")
def produced(tmp_path_factory):
    import keras

    source = other_backend(keras.backend.backend())
    out = tmp_path_factory.mktemp(f"from-{source}")
    env = dict(os.environ, KERAS_BACKEND=source)
    subprocess.run([sys.executable, "-c", PRODUCER, json.dumps(CASES), str(out)], check=True, env=env, timeout=600)
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_weights_and_files_from_another_backend_give_the_same_outputs(name, produced):
    import keras

    from kzoo.testing import random_inputs, small_input_shape

    info = kzoo.model_info(name)
    classes = None if info.get("num_classes", 0) is None else 5
    model = kzoo.create_model(name, input_shape=small_input_shape(info), num_classes=classes, **CASES[name])
    model.load_weights(str(produced / f"{name}.weights.h5"))
    x = random_inputs(model, batch_size=3, seed=1)
    expected = np.load(produced / f"{name}.npy")
    ours = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)
    loaded = kzoo.load_model(str(produced / f"{name}.keras"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x, training=False)), expected, rtol=1e-5, atol=1e-5)
