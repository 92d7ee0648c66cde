"""Building blocks shared by the model families. Like the models, these modules import only ``keras``."""

from kzoo.layers.adapters import classifier_head, image_inputs, sequence_inputs
from kzoo.layers.distance import EuclideanDistance
from kzoo.layers.losses import ContrastiveLoss, SparseSmoothedCrossentropy, with_label_smoothing
from kzoo.layers.metrics import Perplexity
from kzoo.layers.pooling import POOLING_KINDS, StochasticPooling2D, pool2d
from kzoo.layers.preprocessing import ImageNormalization, normalized_inputs

__all__ = [
    "POOLING_KINDS",
    "ContrastiveLoss",
    "EuclideanDistance",
    "ImageNormalization",
    "Perplexity",
    "SparseSmoothedCrossentropy",
    "StochasticPooling2D",
    "classifier_head",
    "image_inputs",
    "normalized_inputs",
    "pool2d",
    "sequence_inputs",
    "with_label_smoothing",
]
