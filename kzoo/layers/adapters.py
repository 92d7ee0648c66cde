"""Input adapters and output heads: how any model accepts any dataset's shape, inside the model graph.

Resizing happens in the graph (on the accelerator, per batch), never by materialising resized copies of a
dataset on the host.
"""

from keras import layers


def image_inputs(input_shape, *, default_shape, min_size=1, image_size=None, name="input"):
    """Create the model input and adapt its spatial size for the family.

    Args:
        input_shape: ``(height, width, channels)`` of the data, or ``None`` for ``default_shape``.
        default_shape: the family's canonical input shape.
        min_size: the smallest side the architecture can process; smaller inputs are resized up to it.
        image_size: resize every input to ``image_size x image_size`` first (``None``: only when needed); it
            must be at least ``min_size``.

    Returns:
        ``(inputs, x)``: the ``keras.Input`` and the tensor the architecture starts from.
    """
    if image_size is not None and image_size < min_size:
        raise ValueError(
            f"image_size must be at least {min_size} for this architecture. Received: image_size={image_size}"
        )
    shape = tuple(input_shape) if input_shape is not None else tuple(default_shape)
    if len(shape) == 2:  # a grayscale (H, W) image gets its channel axis
        shape = (*shape, 1)
    if len(shape) != 3:
        raise ValueError(f"expected an image input_shape (height, width, channels). Received: input_shape={shape}")
    inputs = layers.Input(shape=shape, name=name)
    x = inputs
    height, width = shape[0], shape[1]
    target = image_size
    if target is None and min(height, width) < min_size:
        target = min_size
    if target is not None and (height, width) != (target, target):
        # ``training=False``: Keras's preprocessing layers default to ``training=True``, and Keras 3.15 passes a
        # layer's default on to every later layer of the same call, so ``model(x)`` without ``training`` ran
        # batch norm on batch statistics (updating its moving averages) and dropout. ``fit`` still passes True.
        x = layers.Resizing(target, target, interpolation="bilinear", name="resize")(x, training=False)
    return inputs, x


def sequence_inputs(input_shape, *, default_shape, name="input"):
    """Create a ``(steps, features)`` input; an image ``(H, W, C)`` is read row by row as H steps of W*C."""
    shape = tuple(input_shape) if input_shape is not None else tuple(default_shape)
    inputs = layers.Input(shape=shape, name=name)
    x = inputs
    if len(shape) == 3:
        x = layers.Reshape((shape[0], shape[1] * shape[2]), name="rows_as_steps")(x)
    elif len(shape) != 2:
        raise ValueError(
            f"expected a sequence input_shape (steps, features) or an image (height, width, channels). "
            f"Received: input_shape={shape}"
        )
    return inputs, x


def classifier_head(x, num_classes, *, dropout=0.0, name="predictions"):
    """Dense logits followed by a float32 softmax (stable under mixed precision)."""
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    return layers.Activation("softmax", dtype="float32", name=name)(x)
