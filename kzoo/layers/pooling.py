"""Pooling kinds named in the notes: max, average and stochastic pooling."""

from keras import layers

POOLING_KINDS = ("max", "avg")


def pool2d(kind, pool_size=2, strides=None, padding="valid", name=None):
    """A 2-D pooling layer of the given kind (``"max"`` or ``"avg"``)."""
    if kind == "max":
        return layers.MaxPooling2D(pool_size, strides=strides, padding=padding, name=name)
    if kind == "avg":
        return layers.AveragePooling2D(pool_size, strides=strides, padding=padding, name=name)
    raise ValueError(f"pool must be one of {', '.join(POOLING_KINDS)}. Received: pool={kind!r}")
