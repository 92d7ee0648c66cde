"""Distances between embeddings, as layers so that models using them save to and load from ``.keras``."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="kzoo")
class EuclideanDistance(layers.Layer):
    """Euclidean distance between two embeddings: ``sqrt(max(sum((a - b)^2), epsilon))`` over the last axis.

    The ``epsilon`` floor keeps the gradient of the square root finite when both embeddings are equal.

    Args:
        epsilon: smallest squared distance; ``None`` means ``keras.config.epsilon()``.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: a pair ``[a, b]`` of tensors of equal shape ``(batch, ..., features)``.

    Returns:
        The distances, of shape ``(batch, ..., 1)``.
    """

    def __init__(self, epsilon=None, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = keras.config.epsilon() if epsilon is None else float(epsilon)

    def _check_pair(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(f"EuclideanDistance expects a pair [a, b] of tensors. Received: {inputs!r}")
        return inputs

    def call(self, inputs):
        left, right = self._check_pair(inputs)
        squared = ops.sum(ops.square(left - right), axis=-1, keepdims=True)
        return ops.sqrt(ops.maximum(squared, self.epsilon))

    def compute_output_shape(self, input_shape):
        left, right = self._check_pair(input_shape)
        if tuple(left) != tuple(right):
            raise ValueError(f"EuclideanDistance expects two inputs of equal shape. Received: {left} and {right}")
        return (*left[:-1], 1)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
