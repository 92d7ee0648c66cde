"""The Siamese network, its distance layer and the contrastive loss."""

import keras
import numpy as np
import pytest

import kzoo
from kzoo.errors import OptionError
from kzoo.layers import ContrastiveLoss, EuclideanDistance
from kzoo.testing import trainable_count


def images(seed, count=4):
    return np.random.default_rng(seed).random((count, 28, 28, 1)).astype("float32")



def test_branches_share_one_encoder():
    model = kzoo.create_model("siamese")
    encoder = model.get_layer("encoder")
    assert isinstance(encoder, keras.Model)
    sources = [tensor._keras_history.operation for tensor in model.get_layer("distance").input]
    assert sources == [encoder, encoder]
    assert trainable_count(model) == trainable_count(encoder) == kzoo.model_info("siamese")["params"]
    assert model.output_shape == (None, 1) and encoder.output_shape == (None, 64)


def test_distances():
    model = kzoo.create_model("siamese", embedding_dim=16)
    left, right = images(0), images(1)
    same = model.predict([left, left], verbose=0)
    assert same.shape == (4, 1)
    np.testing.assert_allclose(same, 0.0, atol=1e-3)  # sqrt(epsilon) floor
    encoder = model.get_layer("encoder")
    embeddings = encoder.predict(left, verbose=0) - encoder.predict(right, verbose=0)
    expected = np.sqrt((embeddings ** 2).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(model.predict([left, right], verbose=0), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.predict([right, left], verbose=0), expected, rtol=1e-4, atol=1e-5)


def test_backbone_encoder():
    model = kzoo.create_model("siamese", encoder="lenet5", embedding_dim=8)
    encoder = model.get_layer("encoder")
    assert encoder.output_shape == (None, 8) and encoder.layers[-1].name == "logits"
    assert model.predict([images(2, 2), images(3, 2)], verbose=0).shape == (2, 1)
    with pytest.raises(OptionError, match="encoder must be small_cnn"):
        kzoo.create_model("siamese", encoder="no_such_model")
    with pytest.raises(OptionError, match="num_classes=10"):
        kzoo.create_model("siamese", num_classes=10)


@pytest.mark.parametrize("label_shape", [(6,), (6, 1)])
def test_contrastive_loss_matches_numpy(label_shape):
    distance = np.array([[0.0], [0.3], [0.9], [1.0], [1.7], [0.5]], "float32")
    similar = np.array([1, 0, 1, 0, 0, 1], "float32")
    margin = 1.2
    expected = np.mean(similar * distance[:, 0] ** 2 + (1 - similar) * np.maximum(margin - distance[:, 0], 0) ** 2)
    loss = ContrastiveLoss(margin=margin)(similar.reshape(label_shape), distance)
    assert float(keras.ops.convert_to_numpy(loss)) == pytest.approx(float(expected), rel=1e-6)
    restored = ContrastiveLoss.from_config(ContrastiveLoss(margin=margin).get_config())
    assert restored.margin == margin


def test_saved_model_round_trip(tmp_path):
    model = kzoo.create_model("siamese", embedding_dim=8)
    model.compile(optimizer="adam", loss=ContrastiveLoss(margin=1.0))
    labels = np.array([1, 0, 1, 0], "float32")
    model.train_on_batch([images(4), images(5)], labels)
    path = tmp_path / "siamese.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("distance"), EuclideanDistance)
    assert isinstance(loaded.loss, ContrastiveLoss)
    pair = [images(6), images(7)]
    np.testing.assert_allclose(loaded.predict(pair, verbose=0), model.predict(pair, verbose=0), rtol=1e-5, atol=1e-6)
