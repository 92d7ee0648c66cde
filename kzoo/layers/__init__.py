"""Building blocks shared by the model families. Like the models, these modules import only ``keras``."""

from kzoo.layers.adapters import classifier_head, image_inputs, sequence_inputs
from kzoo.layers.pooling import POOLING_KINDS, pool2d

__all__ = ["POOLING_KINDS", "classifier_head", "image_inputs", "pool2d", "sequence_inputs"]
