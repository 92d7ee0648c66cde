"""Losses beyond Keras' own: the contrastive loss of Siamese networks, the sparse cross-entropy with label
smoothing (Keras's sparse loss has no ``label_smoothing``)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kzoo")
class ContrastiveLoss(keras.losses.Loss):
    """Contrastive loss (Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an Invariant Mapping",
    CVPR 2006): ``y * d^2 + (1 - y) * max(margin - d, 0)^2``, averaged over the batch.

    ``y_true`` is 1 for a similar pair and 0 for a dissimilar one; ``y_pred`` is the distance ``d`` between the
    pair's embeddings, shaped ``(batch,)`` or ``(batch, 1)``. Similar pairs are pulled together, dissimilar pairs
    pushed apart until they are at least ``margin`` apart.

    Args:
        margin: the distance beyond which dissimilar pairs cost nothing.
        name: the loss name.
        **kwargs: base ``keras.losses.Loss`` arguments (``reduction``, ``dtype``).
    """

    def __init__(self, margin=1.0, name="contrastive_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        similar = ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred))
        loss = similar * ops.square(y_pred) + (1.0 - similar) * ops.square(ops.relu(self.margin - y_pred))
        return ops.mean(loss, axis=-1) if len(y_pred.shape) > 1 else loss

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="kzoo")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy with label smoothing (Szegedy et al., "Rethinking the Inception
    Architecture for Computer Vision", CVPR 2016, https://arxiv.org/abs/1512.00567).

    Exactly ``keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)`` on the one-hot of the integer
    labels: the targets become ``(1 - label_smoothing) * one_hot + label_smoothing / classes``.

    Args:
        label_smoothing: how much of the target goes to the uniform distribution, in ``[0, 1)``.
        name: the loss name.
        **kwargs: base ``keras.losses.Loss`` arguments (``reduction``, ``dtype``).
    """

    def __init__(self, label_smoothing=0.1, name="sparse_smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1). Received: label_smoothing={label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = ops.cast(y_true, "int32")
        if len(labels.shape) == len(y_pred.shape):  # (batch, 1) labels, as Keras's sparse loss accepts
            labels = ops.squeeze(labels, axis=-1)
        targets = ops.one_hot(labels, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(targets, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def with_label_smoothing(loss, label_smoothing):
    """``loss`` with its targets smoothed by ``label_smoothing`` (``loss`` itself when 0): a sparse cross-entropy
    becomes :class:`SparseSmoothedCrossentropy`; Keras's categorical and binary cross-entropies take it as their
    own ``label_smoothing``; any other loss (or one with ``ignore_class`` / ``from_logits``) is refused."""
    if not label_smoothing:
        return loss
    received = f"Received: loss={type(loss).__name__}, label_smoothing={label_smoothing}."
    if type(loss) is keras.losses.SparseCategoricalCrossentropy:
        if loss.ignore_class is not None or loss.from_logits:
            raise ValueError(f"label smoothing is not available for a sparse cross-entropy that ignores a class "
                             f"or takes logits. {received}")
        return SparseSmoothedCrossentropy(label_smoothing)
    if type(loss) in (keras.losses.CategoricalCrossentropy, keras.losses.BinaryCrossentropy):
        config = loss.get_config()
        config["label_smoothing"] = float(label_smoothing)
        return type(loss).from_config(config)
    raise ValueError(f"label smoothing applies to the cross-entropy losses only. {received}")
