"""Metrics the notes name beyond Keras' own: the perplexity of a language model."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kzoo")
class Perplexity(keras.metrics.Metric):
    """Perplexity of a language model: ``exp`` of the mean sparse categorical cross-entropy per token.

    ``y_true`` holds integer token ids ``(batch, steps)``; ``y_pred`` the predicted probabilities
    ``(batch, steps, vocab_size)`` (``from_logits=False``, the output of ``classifier_head``). A model that
    predicts every token with certainty scores 1; one that guesses uniformly scores ``vocab_size``.

    Args:
        name: the metric name (``perplexity``; Keras prefixes ``val_`` on held-out data).
        dtype: the dtype of the running sums.
    """

    def __init__(self, name="perplexity", dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(y_pred, self.dtype)
        loss = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, self.dtype)
            loss = loss * sample_weight
            count = ops.sum(ops.broadcast_to(sample_weight, ops.shape(loss)))
        else:
            count = ops.cast(ops.size(loss), self.dtype)
        self.total.assign_add(ops.sum(loss))
        self.count.assign_add(count)

    def result(self):
        return ops.exp(ops.divide_no_nan(self.total, self.count))

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)
