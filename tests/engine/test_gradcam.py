"""Grad-CAM (kzoo/engine/gradcam.py) against a NumPy reference, on whichever backend the suite runs on.

The reference model is conv -> global average pooling -> dense, so the Grad-CAM weights are known in closed
form: d logit_c / d A_k = W[k, c] / (H * W). Every backend is held to the same NumPy map, so all three agree.
"""

import os

import numpy as np
import pytest

from kzoo.errors import KzooError

SIZE, CHANNELS, FILTERS, CLASSES = 6, 3, 4, 3


def _weights():
    rng = np.random.default_rng(7)
    return {"kernel": rng.normal(size=(3, 3, CHANNELS, FILTERS)).astype("float32"),
            "bias": rng.normal(size=FILTERS).astype("float32") * 0.1,
            "dense": rng.normal(size=(FILTERS, CLASSES)).astype("float32"),
            "dense_bias": np.zeros(CLASSES, "float32")}


def _gap_model(w):
    import keras
    from keras import layers

    from kzoo.layers import classifier_head

    inputs = keras.Input((SIZE, SIZE, CHANNELS))
    x = layers.Conv2D(FILTERS, 3, activation="relu", name="conv")(inputs)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, classifier_head(x, CLASSES), name="gap_net")
    model.get_layer("conv").set_weights([w["kernel"], w["bias"]])
    model.get_layer("logits").set_weights([w["dense"], w["dense_bias"]])
    return model


def _numpy_reference(x, w, classes):
    """Features of the valid 3x3 convolution + ReLU, and the Grad-CAM of the analytic weights."""
    out = SIZE - 2
    windows = np.stack([x[:, i:i + 3, j:j + 3, :] for i in range(out) for j in range(out)], axis=1)
    features = np.maximum(np.einsum("npijc,ijck->npk", windows, w["kernel"]) + w["bias"], 0)
    features = features.reshape(len(x), out, out, FILTERS)
    weights = w["dense"][:, classes].T / (out * out)  # (N, K)
    cams = np.maximum(np.einsum("nhwk,nk->nhw", features, weights), 0)
    peak = cams.max(axis=(1, 2), keepdims=True)
    return features, weights, np.where(peak > 0, cams / np.where(peak > 0, peak, 1), 0)


def test_gradients_and_map_match_the_analytic_reference():
    import keras

    from kzoo.engine.gradcam import _score_gradients, gradcam_maps

    w = _weights()
    model = _gap_model(w)
    x = np.random.default_rng(1).random((3, SIZE, SIZE, CHANNELS), dtype="float32")
    classes = np.array([0, 2, 1])
    features, weights, expected = _numpy_reference(x, w, classes)
    cam_model = keras.Model(model.inputs[0], [model.get_layer("conv").output, model.get_layer("logits").output])
    got_features, grads = _score_gradients(cam_model, x, classes)
    np.testing.assert_allclose(got_features, features, atol=1e-4)
    np.testing.assert_allclose(grads, np.broadcast_to(weights[:, None, None, :], grads.shape), atol=1e-6)
    np.testing.assert_allclose(gradcam_maps(model, x, classes), expected, atol=1e-4)


def test_feature_layer_is_found_through_the_head_contract():
    """Every registered convolutional classifier is checked by kzoo.testing.check_model; here the choice itself."""
    import keras
    from keras import layers

    import kzoo
    from kzoo.engine.gradcam import feature_layer
    from kzoo.layers import classifier_head

    found = {name: feature_layer(kzoo.create_model(name, input_shape=(28, 28, 1), num_classes=4)).name
             for name in ("lenet5", "mobilenet_v1")}  # mobilenet_v1: the kzoo-mobilenet plugin
    assert found == {"lenet5": "s4_pool", "mobilenet_v1": "block13_pw_relu"}
    inputs = keras.Input((5, 3))
    recurrent = keras.Model(inputs, classifier_head(layers.LSTM(4)(inputs), 2), name="tiny_lstm")
    with pytest.raises(KzooError, match="tiny_lstm is not a convolutional model"):
        feature_layer(recurrent)


@pytest.fixture(scope="module")
def digit_run(tmp_path_factory):
    """LeNet-5 trained one short epoch, and three digit PNGs."""
    import kzoo
    from kzoo.data import load_dataset
    from PIL import Image

    work = tmp_path_factory.mktemp("explain")
    digits = load_dataset("mnist_embedded")
    for i in range(3):
        Image.fromarray(digits.x_test[i].squeeze()).save(work / f"digit{i}.png")
    kzoo.train("lenet5", epochs=1, output=str(work / "run"), limit=200, batch_size=50, quiet=True, val_split=0.2)
    return work


def _explain(cli_runner, *args):
    from kzoo_cli.main import cli

    return cli_runner.invoke(cli, ["explain", *map(str, args)])


def test_cli_writes_heatmap_pngs(cli_runner, digit_run):
    import json

    from PIL import Image

    result = _explain(cli_runner, digit_run / "run", digit_run / "digit0.png", digit_run / "digit1.png", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [os.path.basename(r["heatmap"]) for r in rows] == ["digit0_gradcam.png", "digit1_gradcam.png"]
    for row in rows:
        assert os.path.dirname(row["heatmap"]) == str(digit_run / "run" / "explain") and row["layer"] == "s4_pool"
        assert 0 < row["probability"] <= 1
        with Image.open(row["heatmap"]) as png:
            assert png.format == "PNG" and png.mode == "RGB" and min(png.size) >= 224

    chosen = _explain(cli_runner, digit_run / "run", digit_run / "digit2.png", "--class", "3", "--layer", "c3_conv",
                      "--output", digit_run / "maps")
    assert chosen.exit_code == 0, chosen.output
    assert " 3 " in chosen.output and (digit_run / "maps" / "digit2_gradcam.png").exists()


@pytest.mark.parametrize("args, message", [
    (("{run}", "{work}/digit0.png", "--layer", "c3_con"), "Did you mean 'c3_conv'"),
    (("{run}", "{work}/digit0.png", "--class", "zebra"), "No class 'zebra'"),
    (("{work}/no-such-run", "{work}/digit0.png"), "No such run folder"),
    (("{run}", "{work}/not-an-image.png"), "not a readable image"),
    (("{work}/mlp.keras", "{work}/digit0.png"), "mlp is not a convolutional model"),
])
def test_cli_user_mistakes_exit_2(cli_runner, digit_run, args, message):
    import kzoo

    (digit_run / "not-an-image.png").write_text("hello")
    if not (digit_run / "mlp.keras").exists():
        kzoo.build("mlp", digit_run / "mlp.keras")
    result = _explain(cli_runner, *(a.format(run=digit_run / "run", work=digit_run) for a in args))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
