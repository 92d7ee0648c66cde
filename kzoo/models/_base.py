"""Helpers every model family shares: default shapes and classes from the spec, and the functional model."""

import keras

from kzoo.layers import image_inputs


def spec_value(spec, card, key):
    """A spec row's value, falling back to the family card."""
    return spec[key] if key in spec else card[key]


def classes_for(spec, card, num_classes):
    return num_classes if num_classes is not None else spec_value(spec, card, "num_classes")


def inputs_for(spec, card, input_shape, *, min_size=1, image_size=None):
    """The image input of a model, resized in the graph when the architecture needs a larger one."""
    return image_inputs(input_shape, default_shape=spec_value(spec, card, "input_shape"),
                        min_size=min_size, image_size=image_size)


def functional(inputs, outputs, name):
    return keras.Model(inputs, outputs, name=name)


def image_backbone(name, input_shape, units):
    """A registered image classifier cut at its ``logits`` layer (``units`` wide), as a model named ``encoder``."""
    from kzoo.errors import UnknownNameError
    from kzoo.factory import create_model  # lazily: the factory is not a keras-only helper

    try:
        backbone = create_model(name, input_shape=input_shape, num_classes=units)
    except UnknownNameError as exc:
        raise ValueError(f"encoder must be small_cnn or a registered image classifier. {exc}") from None
    try:
        logits = backbone.get_layer("logits")
    except ValueError:
        raise ValueError(
            f"encoder must be small_cnn or an image classifier with a 'logits' layer. Received: encoder={name!r}"
        ) from None
    return keras.Model(backbone.inputs, logits.output, name="encoder")
