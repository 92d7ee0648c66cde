"""The harness that checks every registered model; plugin authors call the same functions.

    from kzoo.testing import check_model, check_param_count

    def test_my_model(tmp_path):
        check_model("my_model", tmp_path=tmp_path)
        check_param_count("my_model")

What it checks: the builder's keyword defaults equal the options the registry advertises; the model builds at
a small input; its outputs have the expected shape; one training step gives a finite loss; a convolutional
classifier has the feature map ``kzoo explain`` draws its Grad-CAM from; a ``.keras`` save
and load round trip gives the same outputs; and the trainable parameter count at the canonical configuration
equals the ``params`` recorded in the model's spec.
"""

import inspect
import math
import os

import numpy as np

from kzoo.factory import create_model
from kzoo.registry import model_info, models
from kzoo.summary import count_weights

SMALL_IMAGE = (28, 28, 1)
SMALL_SEQUENCE = (28, 28)


def small_input_shape(info):
    """The shape the harness builds a model at: the spec's ``test_input_shape``, else a 28x28 sample."""
    if info.get("test_input_shape"):
        return tuple(info["test_input_shape"])
    canonical = info.get("input_shape")
    if canonical is not None and len(canonical) == 2:
        return SMALL_SEQUENCE
    if canonical is not None and len(canonical) == 1:
        return tuple(canonical)
    return SMALL_IMAGE


def builder_defaults_match(name):
    """The public builder's generic keyword defaults equal the registry's advertised option defaults."""
    info = model_info(name)
    builder = models.resolve(name).load()
    target = getattr(builder, "__wrapped__", builder)
    # the public builder forwards **options to one generic builder: compare with that one's signature
    module = inspect.getmodule(target)
    generic = [
        obj for attr, obj in vars(module).items()
        if attr.startswith("_create") and callable(obj)
    ]
    mismatches = []
    for option, schema in (info.get("options") or {}).items():
        found = False
        for func in generic:
            param = inspect.signature(func).parameters.get(option)
            if param is None or param.default is inspect.Parameter.empty:
                continue
            found = True
            default = schema.get("default")
            value = param.default
            if isinstance(default, list):
                default = tuple(default)
            if isinstance(value, list):
                value = tuple(value)
            if value != default and not (name.startswith("bi") and option == "bidirectional"):
                mismatches.append(f"{option}: builder default {value!r} != card default {default!r}")
        if not found and generic:
            mismatches.append(f"{option}: not a keyword of any _create* builder in {module.__name__}")
    return mismatches


def token_limit(model, default=8):
    """The exclusive upper bound of random token ids: at most ``default``, below every embedding's vocabulary."""
    import keras

    sizes = [layer.input_dim for layer in model._flatten_layers(include_self=False)
             if isinstance(layer, keras.layers.Embedding)]
    return min([default, *sizes])


def random_inputs(model, batch_size=2, seed=0):
    """Random data for each model input: floats in [0, 1), or token ids below :func:`token_limit` for int inputs.

    A model with several inputs gets a list in the order of ``model.inputs``.
    """
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = (batch_size, *[d for d in tensor.shape[1:]])
        if "int" in str(tensor.dtype):
            arrays.append(rng.integers(0, token_limit(model), size=shape).astype("int32"))
        else:
            arrays.append(rng.random(shape, dtype=np.float32))
    return arrays[0] if len(arrays) == 1 else arrays


def loss_and_targets(model, batch_size, num_classes, seed=0):
    """A loss and random targets fitting the model's output (class probabilities or a pair distance)."""
    import keras

    rng = np.random.default_rng(seed)
    output = model.outputs[0]
    if model.layers[-1].name == "distance":
        from kzoo.layers.losses import ContrastiveLoss

        return ContrastiveLoss(), rng.integers(0, 2, size=(batch_size, 1)).astype("float32")
    classes = output.shape[-1]
    target_shape = (batch_size, *output.shape[1:-1])
    return keras.losses.SparseCategoricalCrossentropy(), rng.integers(0, classes, size=target_shape)


def check_model(name, *, tmp_path, num_classes=3, batch_size=2, input_shape=None, train_step=True, seed=0,
                **options):
    """Build ``name`` small, run it, train one step, and round-trip it through a ``.keras`` file.

    The seed fixes the initial weights, so a check cannot pass or fail by the luck of the draw.
    """
    import keras

    from kzoo.engine.loops import seed_everything

    seed_everything(seed)
    info = model_info(name)
    mismatches = builder_defaults_match(name)
    assert not mismatches, f"{name}: " + "; ".join(mismatches)
    shape = tuple(input_shape) if input_shape else small_input_shape(info)
    if "num_classes" in info and info["num_classes"] is None:  # e.g. a Siamese net outputs a distance
        num_classes = None
    model = create_model(name, input_shape=shape, num_classes=num_classes, **options)
    assert isinstance(model, keras.Model), f"{name}: the builder returned {type(model).__name__}, not a keras.Model"
    x = random_inputs(model, batch_size)
    y_pred = np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))
    if model.layers[-1].name != "distance":
        assert y_pred.shape[0] == batch_size and y_pred.shape[-1] == num_classes, (
            f"{name}: output shape {y_pred.shape}, expected ({batch_size}, ..., {num_classes})")
        if model.layers[-1].name == "predictions":
            np.testing.assert_allclose(y_pred.sum(axis=-1), 1.0, rtol=1e-4, err_msg=f"{name}: softmax rows")
    assert np.all(np.isfinite(y_pred)), f"{name}: non-finite outputs"

    if train_step:
        for attempt in range(3):
            if attempt:  # a ReLU net whose outputs all start dead (NiN at its smallest input) gets no gradient
                seed_everything(seed + attempt)
                model = create_model(name, input_shape=shape, num_classes=num_classes, **options)
            if _one_step_changes_weights(model, x, batch_size, num_classes, name):
                break
        else:
            raise AssertionError(f"{name}: a training step changed no weight (3 initialisations)")
        y_pred = np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))

    _check_gradcam(model, x, name)

    path = os.path.join(str(tmp_path), f"{name.replace(':', '_')}.keras")
    model.save(path)
    from kzoo.engine.checkpoints import load_model

    loaded = load_model(path)
    y_loaded = np.asarray(keras.ops.convert_to_numpy(loaded(x, training=False)))
    np.testing.assert_allclose(y_loaded, y_pred, rtol=1e-5, atol=1e-6,
                               err_msg=f"{name}: outputs changed after a .keras round trip")
    return model


def _check_gradcam(model, x, name):
    """A convolutional classifier has a feature map before its ``logits`` head that ``kzoo explain`` finds."""
    has_head = any(layer.name == "logits" for layer in model.layers)
    if not (has_head and len(model.inputs) == 1 and any("Conv" in type(layer).__name__ for layer in model.layers)):
        return
    from kzoo.engine.gradcam import gradcam_maps

    cams = gradcam_maps(model, x, np.zeros(len(x), "int64"))
    assert cams.shape[0] == len(x) and cams.ndim == 3, f"{name}: Grad-CAM maps of shape {cams.shape}"
    assert np.all((cams >= 0) & (cams <= 1)), f"{name}: Grad-CAM maps outside [0, 1]"


def _one_step_changes_weights(model, x, batch_size, num_classes, name):
    import keras

    loss, y = loss_and_targets(model, batch_size, num_classes)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
    before = [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
    result = model.train_on_batch(x, y)
    loss_value = float(result[0] if isinstance(result, (list, tuple)) else result)
    assert math.isfinite(loss_value), f"{name}: training loss {loss_value}"
    after = [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def trainable_count(model):
    return count_weights(model.trainable_weights)


def check_param_count(name):
    """Trainable parameters at the canonical input shape and classes equal the spec's ``params``."""
    info = model_info(name)
    expected = info.get("params")
    assert expected is not None, f"{name}: its spec records no 'params'"
    model = create_model(name)
    actual = trainable_count(model)
    assert actual == expected, f"{name}: {actual:,} trainable parameters, spec says {expected:,}"
    return actual
