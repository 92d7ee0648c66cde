"""The Siamese task: balanced pairs drawn afresh per epoch, the threshold sweep, training and its report."""

import json

import numpy as np
import pytest

import kzoo
from kzoo.tasks.samplers import make_pairs
from kzoo.tasks.siamese import best_threshold, pca_2d
from kzoo.errors import OptionError


def test_pairs_are_balanced_and_correctly_labelled():
    labels = np.repeat(np.arange(10), 30)
    left, right, same = make_pairs(labels, 1000, np.random.default_rng(0))
    assert same.sum() == 500
    np.testing.assert_array_equal(labels[left] == labels[right], same == 1)


def test_pair_batches_are_fresh_every_epoch_and_seeded():
    from kzoo.tasks.samplers import PairBatches

    images = np.random.default_rng(0).random((100, 8, 8, 1)).astype("float32")
    labels = np.arange(100) % 5
    batches = PairBatches(images, labels, batch_size=16, seed=7)
    assert len(batches) == 7 and batches.samples == 100
    (x, y) = batches[0]
    assert x["left"].shape == (16, 8, 8, 1) and y.shape == (16,)
    first = batches.left.copy()
    batches.on_epoch_end()
    assert not np.array_equal(first, batches.left)
    again = PairBatches(images, labels, batch_size=16, seed=7)
    np.testing.assert_array_equal(again.left, first)


def test_best_threshold_separates_distances():
    distance = np.array([0.1, 0.2, 0.3, 0.9, 1.0, 1.1])
    same = np.array([1, 1, 1, 0, 0, 0], dtype="float32")
    accuracy, threshold = best_threshold(distance, same)
    assert accuracy == 1.0 and 0.3 < threshold < 0.9


def test_pca_projects_to_two_dimensions():
    assert pca_2d(np.random.default_rng(0).random((50, 8))).shape == (50, 2)


def test_siamese_training_reports_pair_accuracy_and_plots_embeddings(tmp_path):
    run = tmp_path / "siamese"
    result = kzoo.train("siamese", epochs=1, limit=300, batch_size=50, quiet=True, output=str(run))
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("pair_accuracy", "threshold", "loss", "mean_distance_similar", "mean_distance_dissimilar"):
        assert key in metrics
    assert metrics["threshold_chosen_on"] == "validation pairs" and "validation_pair_accuracy" in metrics
    assert metrics["samples"] == 600 and metrics["split"] == "test: the first 300 of 10000 examples (--limit 300)"
    assert result["pair_accuracy"] == metrics["pair_accuracy"]
    assert (run / "embedding.png").exists() and not (run / "confusion_matrix.png").exists()


def test_siamese_rejects_other_losses(tmp_path):
    with pytest.raises(OptionError, match="contrastive"):
        kzoo.train("siamese", loss="sparse_cce", epochs=1, limit=100, quiet=True, output=str(tmp_path / "a"))


def test_resumed_pair_batches_draw_what_the_uninterrupted_run_drew():
    from kzoo.tasks.samplers import PairBatches, WindowBatches

    images = np.zeros((60, 2, 2, 1), "float32")
    labels = np.arange(60) % 3
    uninterrupted = PairBatches(images, labels, batch_size=8, seed=5)
    uninterrupted.on_epoch_end()
    uninterrupted.on_epoch_end()
    resumed = PairBatches(images, labels, batch_size=8, seed=5, first_epoch=2)
    np.testing.assert_array_equal(resumed.left, uninterrupted.left)
    np.testing.assert_array_equal(resumed.right, uninterrupted.right)
    windows_run = WindowBatches(np.arange(500), 8, batch_size=4, seed=5)
    windows_run.on_epoch_end()
    np.testing.assert_array_equal(WindowBatches(np.arange(500), 8, batch_size=4, seed=5, first_epoch=1).x,
                                  windows_run.x)


def _identity_siamese():
    """A Siamese model whose encoder passes a 1-D "image" through unchanged: embeddings are the inputs."""
    import keras

    encoder = keras.Sequential([keras.Input((1,)), keras.layers.Identity()], name="encoder")
    left, right = keras.Input((1,), name="left"), keras.Input((1,), name="right")
    return keras.Model({"left": left, "right": right}, keras.layers.Subtract()([encoder(left), encoder(right)]))


def test_threshold_is_chosen_on_validation_pairs_and_test_accuracy_measured_at_it():
    from kzoo.engine.forward import inference_forward
    from kzoo.tasks.siamese import SiameseTask

    task = SiameseTask()
    # validation: classes at 0 and 10, so the best threshold is midway, about 5
    labels = np.arange(200) % 2
    task.threshold_images = ("validation", (labels * 10.0)[:, None].astype("float32"), labels)
    # test: classes at 0 and 3; at a threshold of 5 every pair is called similar, so exactly half are right
    # (a threshold chosen on these test pairs would separate them all: accuracy 1.0)
    report = task.evaluate(_identity_siamese(), (labels * 3.0)[:, None].astype("float32"), labels,
                           forward=inference_forward)
    assert 4.0 < report["threshold"] < 6.0 and report["threshold_chosen_on"] == "validation pairs"
    assert report["validation_pair_accuracy"] == 1.0
    assert report["pair_accuracy"] == 0.5 and report["samples"] == 400
