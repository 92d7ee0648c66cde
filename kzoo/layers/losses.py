"""Losses the notes name beyond Keras' own: the contrastive loss of Siamese networks."""

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
