"""Metric learning (a Siamese network on pairs of images): the pair verification accuracy and embedding plot."""

import os

import numpy as np

from kzoo.errors import DataError, OptionError
from kzoo.tasks import names
from kzoo.tasks.base import FitData, Task, predict_proba
from kzoo.tasks.classification import ClassificationTask


class SiameseTask(Task):
    """Metric learning: a Siamese network learns from pairs of images whether they show the same class.

    Training pairs are drawn afresh every epoch, half similar (label 1) and half dissimilar (label 0)
    (:class:`kzoo.tasks.samplers.PairBatches`); validation uses fixed seeded pairs of the held-out images.
    The final evaluation chooses the distance threshold that separates the validation pairs best (the training
    pairs when ``val_split`` is 0; the report names which), then scores ``test_pairs`` fixed balanced test pairs
    by the pair verification accuracy at that threshold, and plots the test set's embeddings in 2-D (PCA) as
    ``embedding.png``.

    Attributes:
        threshold_images: ``(name, images, labels)`` the threshold is chosen on, set by :meth:`prepare`.
    """

    name = names.METRIC_LEARNING
    monitor = "val_loss"
    test_pairs = 10_000

    def __init__(self):
        self.margin = 1.0
        self.embedding = None
        self.threshold_images = None

    def prepare(self, dataset, config):
        if dataset.task != names.IMAGE_CLASSIFICATION:
            raise DataError(f"A Siamese network learns from labelled images; dataset {dataset.name!r} holds "
                            f"{dataset.task} data.")
        if config.augment:
            raise OptionError("--augment applies to single-image models; a Siamese network takes pairs.")
        prepared = ClassificationTask().prepare(dataset, config)
        self.margin = config.margin
        if prepared.x_val is not None:
            self.threshold_images = ("validation", prepared.x_val, prepared.y_val)
        else:
            self.threshold_images = ("training", prepared.x_train, prepared.y_train)
        prepared.num_classes = None  # the model outputs a distance, not classes
        return prepared

    def fit_data(self, prepared, config, initial_epoch=0):
        from kzoo.tasks.samplers import PairBatches, make_pairs

        batches = PairBatches(prepared.x_train, prepared.y_train, config.batch_size, seed=config.seed,
                              first_epoch=initial_epoch)
        validation = None
        if prepared.x_val is not None:
            left, right, same = make_pairs(prepared.y_val, len(prepared.y_val), np.random.default_rng(config.seed))
            validation = ({"left": prepared.x_val[left], "right": prepared.x_val[right]}, same)
        return FitData(batches, None, validation, batches.samples)

    def loss(self, name):
        from kzoo.layers import ContrastiveLoss

        if name != "contrastive":
            raise OptionError(f"A Siamese network trains with --loss contrastive. Received: loss={name!r}.")
        return ContrastiveLoss(margin=self.margin)

    def evaluate(self, model, x, y, *, forward, class_names=None, batch_size=256, loss="contrastive"):
        """Pair verification accuracy on fixed balanced test pairs at the threshold chosen on validation pairs."""
        encoder = model.get_layer("encoder")
        chosen_on, x_threshold, y_threshold = self.threshold_images
        distance, same, _ = self._pair_distances(encoder, x_threshold, y_threshold, batch_size, forward,
                                                  seed=4321)
        threshold_accuracy, threshold = best_threshold(distance, same)
        distance, same, embeddings = self._pair_distances(encoder, x, y, batch_size, forward, seed=1234)
        accuracy = float(np.mean((distance <= threshold) == (same == 1)))
        contrastive = same * distance ** 2 + (1 - same) * np.maximum(self.margin - distance, 0) ** 2
        y = np.asarray(y).astype("int64")
        self.embedding = (pca_2d(embeddings), y, class_names)
        return {"samples": int(len(same)), "loss": round(float(contrastive.mean()), 6),
                "pair_accuracy": round(accuracy, 6), "threshold": round(threshold, 6),
                "threshold_chosen_on": f"{chosen_on} pairs",
                f"{chosen_on}_pair_accuracy": round(threshold_accuracy, 6),
                "mean_distance_similar": round(float(distance[same == 1].mean()), 6),
                "mean_distance_dissimilar": round(float(distance[same == 0].mean()), 6)}

    def _pair_distances(self, encoder, x, y, batch_size, forward, seed):
        """Embedding distances of fixed seeded balanced pairs of ``x``, their labels, and the embeddings."""
        from kzoo.tasks.samplers import make_pairs

        left, right, same = make_pairs(np.asarray(y).astype("int64"), min(self.test_pairs, 2 * len(y)),
                                       np.random.default_rng(seed))
        embeddings = predict_proba(encoder, x, batch_size, forward=forward)
        distance = np.sqrt(np.maximum(np.sum((embeddings[left] - embeddings[right]) ** 2, axis=-1), 1e-7))
        return distance, same, embeddings

    def save_plots(self, report, run_dir):
        if self.embedding is not None:
            plot_embedding(*self.embedding, os.path.join(run_dir, "embedding.png"),
                           title=f"test embeddings (PCA), pair accuracy {report['pair_accuracy']:.4f}")


def best_threshold(distance, same):
    """The distance threshold (similar when ``distance <= threshold``) that classifies most pairs correctly.

    Returns:
        ``(accuracy, threshold)``; the threshold lies midway between two neighbouring distances.
    """
    order = np.argsort(distance, kind="stable")
    d, s = distance[order], same[order]
    # predicting "similar" for the first k pairs: correct = similar among them + dissimilar after them
    similar_before = np.concatenate([[0], np.cumsum(s)])
    dissimilar_after = (1 - s).sum() - np.concatenate([[0], np.cumsum(1 - s)])
    correct = similar_before + dissimilar_after
    k = int(np.argmax(correct))
    bounds = np.concatenate([[d[0] - 1e-6], d, [d[-1] + 1e-6]])
    threshold = float((bounds[k] + bounds[k + 1]) / 2)
    return float(correct[k] / len(d)), threshold


def pca_2d(points):
    """Project points ``(N, D)`` on their two principal axes (numpy SVD); ``D == 1`` gets a zero second axis."""
    centred = points - points.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ components[:2].T
    if projected.shape[1] < 2:
        projected = np.pad(projected, ((0, 0), (0, 2 - projected.shape[1])))
    return projected


def plot_embedding(points, labels, class_names, path, title="embeddings"):
    """A 2-D scatter plot of embeddings, one colour per class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 6))
    cmap = plt.get_cmap("tab10" if labels.max() < 10 else "tab20")
    for c in np.unique(labels):
        mask = labels == c
        name = class_names[c] if class_names and c < len(class_names) else str(c)
        ax.scatter(points[mask, 0], points[mask, 1], s=3, alpha=0.6, color=cmap(int(c) % cmap.N), label=name)
    ax.set_title(title)
    ax.legend(markerscale=4, fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
