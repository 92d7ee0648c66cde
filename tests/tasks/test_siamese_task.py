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
    assert 0.5 <= metrics["pair_accuracy"] <= 1.0 and metrics["samples"] == 600
    assert result["pair_accuracy"] == metrics["pair_accuracy"]
    assert (run / "embedding.png").exists() and not (run / "confusion_matrix.png").exists()


def test_siamese_rejects_other_losses(tmp_path):
    with pytest.raises(OptionError, match="contrastive"):
        kzoo.train("siamese", loss="sparse_cce", epochs=1, limit=100, quiet=True, output=str(tmp_path / "a"))
