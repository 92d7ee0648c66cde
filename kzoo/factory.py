"""Building a registered model: the one place where the registry, the backend and published weights meet.

:mod:`kzoo.registry` finds a name and checks its options from metadata alone; :mod:`kzoo.weights` reads
published or saved weights; :func:`create_model` fixes the backend, imports the model's module, builds it and
loads the weights. Importing this module imports neither keras nor a framework.
"""

import sys

from kzoo.backend import set_backend
from kzoo.errors import OptionError, PluginError, first_line
from kzoo.registry import resolve_model_options
from kzoo.weights import load_into, source_of


def create_model(name, *, input_shape=None, num_classes=None, weights=None, **options):
    """Build a registered model, untrained or from ``weights``.

    Args:
        name: registered name (``"resnet18"``) or qualified name (``"kzoo:resnet18"``).
        input_shape: ``(height, width, channels)`` for images, ``(steps, features)`` for sequences;
            ``None`` keeps the model's canonical shape.
        num_classes: output classes; ``None`` keeps the canonical number.
        weights: ``"torchvision"`` / ``"imagenet"`` (the published files in the model's spec), or a file:
            torchvision ``.pth``, keras.applications ``.h5``, kzoo ``.keras`` / ``.weights.h5`` (see
            :mod:`kzoo.weights`). The model then includes the input normalisation the weights expect.
        **options: model options as listed by :func:`kzoo.registry.model_info`; ``None`` values keep the default.

    Returns:
        A ``keras.Model`` named after the model.
    """
    entry, info, clean = resolve_model_options(name, options)
    input_shape = _check_shape(name, input_shape)
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise OptionError(f"num_classes must be a positive integer. Received: num_classes={num_classes!r}.")
    set_backend()  # honour KERAS_BACKEND, default torch, before the model module imports keras
    source = None
    if weights is not None:
        source = source_of(weights, info)
        if "input_normalization" in info.get("options", {}) and options.get("input_normalization") is None:
            clean["input_normalization"] = source[2]
    builder = entry.load()
    try:
        model = builder(input_shape=input_shape, num_classes=num_classes, **clean)
    except Exception as exc:
        if entry.builtin:
            if isinstance(exc, ValueError):
                raise OptionError(f"Cannot build {name}: {exc}") from exc
            raise
        raise PluginError(
            f"{name!r} from distribution {entry.distribution} {entry.version} failed to build "
            f"({type(exc).__name__}: {first_line(exc)})."
        ) from exc
    if source is not None:
        load_into(model, *source[:2], info, notify=lambda message: print(message, file=sys.stderr))
    return model


def _check_shape(name, input_shape):
    if input_shape is None:
        return None
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise OptionError(f"input_shape of {name} must be a sequence of positive integers. "
                          f"Received: input_shape={input_shape!r}.") from None
    if not shape or any(d <= 0 for d in shape):
        raise OptionError(f"input_shape of {name} must be non-empty positive integers. "
                          f"Received: input_shape={input_shape!r}.")
    return shape
