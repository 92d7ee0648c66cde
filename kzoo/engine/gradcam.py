"""Grad-CAM heatmaps of a classification run (``kzoo explain``).

Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization", 2017
(https://arxiv.org/abs/1610.02391). For a feature map ``A`` (``H x W x K``) and the class score ``y`` (the
``logits`` unit of the class, before the softmax), ``w_k = mean over H, W of dy/dA_k`` and
``cam = relu(sum_k w_k A_k)``, upsampled to the input and scaled to [0, 1].

The feature map is found through the head contract of :func:`kzoo.layers.classifier_head` (a ``Dense`` named
``logits``): :func:`feature_layer` walks back from ``logits`` to the last layer with an ``(H, W, C)`` output.
The gradient is the only backend-specific part, in :func:`_score_gradients`.
"""

import difflib
import os

import numpy as np

from kzoo.engine.finetune import HEAD_LAYERS
from kzoo.errors import KzooError

DISPLAY_MIN_SIDE = 224  # small inputs (28x28 digits) are drawn larger, so the overlay can be seen


def _is_feature_map(tensor):
    return len(tensor.shape) == 4


def _head(model):
    try:
        return model.get_layer(HEAD_LAYERS[0])
    except ValueError:
        raise KzooError(f"kzoo explain needs a classifier with a {HEAD_LAYERS[0]!r} layer "
                        f"(kzoo.layers.classifier_head); {model.name} has none.") from None


def feature_layers(model):
    """Names of the layers before the head whose output is a feature map ``(H, W, C)``, in graph order."""
    return [layer.name for layer in model.layers if _has_feature_output(layer)]


def _has_feature_output(layer):
    try:
        return _is_feature_map(layer.output) and type(layer).__name__ != "InputLayer"
    except (AttributeError, ValueError):  # a layer called more than once has no single output
        return False


def feature_layer(model):
    """The layer whose output is the last feature map ``(H, W, C)`` feeding the ``logits`` head.

    Raises:
        KzooError: the model has no ``logits`` head, or nothing spatial feeds it (an MLP, a recurrent model).
    """
    from kzoo.engine._keras_compat import producer_inputs

    tensor = _head(model).input
    while True:
        layer, inputs = producer_inputs(tensor)
        if not inputs:  # the model input: nothing spatial on the way
            break
        if _is_feature_map(tensor) and "Dropout" not in type(layer).__name__:  # dropout: identity when explaining
            return layer
        tensor = inputs[0]
    raise KzooError(f"{model.name} is not a convolutional model: no (height, width, channels) feature map feeds its "
                    f"{HEAD_LAYERS[0]!r} head, so Grad-CAM has nothing to localize (it explains image classifiers "
                    "such as lenet5, resnet18, vgg11).")


def _chosen_layer(model, name):
    if name is None:
        return feature_layer(model)
    candidates = feature_layers(model)
    if name not in candidates:
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        convs = [c for c in candidates if "conv" in c][-8:] or candidates[-8:]
        raise KzooError(f"{model.name} has no feature-map layer {name!r}.{hint} Its last convolutional layers: "
                        f"{', '.join(convs)}.")
    return model.get_layer(name)


def _score_gradients(model, x, classes):
    """``(A, dy/dA)`` as float32 NumPy arrays for ``model: x -> [A, logits]`` and ``y = logits[i, classes[i]]``."""
    import keras

    backend = keras.backend.backend()
    rows = np.arange(len(x))
    if backend == "torch":
        import torch

        # the input requires a gradient, so every tensor after it is in the graph, frozen layers or not
        inputs = keras.ops.convert_to_tensor(x).requires_grad_(True)
        with torch.enable_grad():
            features, logits = model(inputs, training=False)
            score = logits[torch.as_tensor(rows), torch.as_tensor(classes)].sum()
            grads, = torch.autograd.grad(score, features)
        features = features.detach()
    elif backend == "tensorflow":
        import tensorflow as tf

        inputs = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            features, logits = model(inputs, training=False)
            score = tf.reduce_sum(tf.gather_nd(logits, np.stack([rows, classes], axis=1)))
        grads = tape.gradient(score, features)
    elif backend == "jax":
        import jax

        # jax differentiates functions, not tensors: the head as a function of the feature map
        try:
            head = keras.Model(model.outputs[0], model.outputs[1])
        except ValueError:
            raise KzooError("On jax, Grad-CAM needs a layer whose output alone feeds the head; a skip connection "
                            "bypasses this one. Choose the last layer of a block.") from None
        features = model(x, training=False)[0]
        variables = [v.value for v in head.trainable_variables], [v.value for v in head.non_trainable_variables]

        def score(feature_map):
            logits, _ = head.stateless_call(*variables, feature_map, training=False)
            return logits[rows, classes].sum()

        grads = jax.grad(score)(features)
    else:
        raise KzooError(f"kzoo explain does not support the {backend} backend.")
    as_numpy = keras.ops.convert_to_numpy
    return np.asarray(as_numpy(features), "float32"), np.asarray(as_numpy(grads), "float32")


def gradcam_maps(model, x, classes, layer=None):
    """Grad-CAM maps ``(N, H', W')`` in [0, 1] at the feature map's resolution, for classes ``classes[i]``.

    Args:
        model: a classifier with a ``logits`` head (:func:`kzoo.layers.classifier_head`).
        x: a float32 batch shaped like the model input.
        layer: a layer name with an ``(H, W, C)`` output; default :func:`feature_layer`.
    """
    import keras

    chosen = _chosen_layer(model, layer)
    cam_model = keras.Model(model.inputs[0], [chosen.output, _head(model).output])
    features, grads = _score_gradients(cam_model, np.asarray(x, "float32"), np.asarray(classes, "int64"))
    weights = grads.mean(axis=(1, 2), keepdims=True)
    cams = np.maximum((weights * features).sum(axis=-1), 0.0)
    peak = cams.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, cams / np.where(peak > 0, peak, 1.0), 0.0).astype("float32")


def upsample(cam, size):
    """A ``[0, 1]`` map resized to ``size = (height, width)`` (bilinear)."""
    from PIL import Image

    height, width = size
    return np.asarray(Image.fromarray(cam.astype("float32"), mode="F").resize((width, height), Image.BILINEAR))


def overlay(image, cam, *, alpha=0.45, colormap="jet"):
    """An RGB uint8 picture: ``image`` (``H x W x C`` in [0, 1]) under ``cam`` coloured with a matplotlib map."""
    from matplotlib import colormaps
    from PIL import Image

    height, width = image.shape[:2]
    scale = max(1, -(-DISPLAY_MIN_SIDE // min(height, width)))
    size = (width * scale, height * scale)
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    base = np.asarray(Image.fromarray((np.clip(rgb, 0, 1) * 255).astype("uint8")).resize(size, Image.BILINEAR))
    heat = colormaps[colormap](np.clip(upsample(cam, size[::-1]), 0, 1))[..., :3]
    return (base * (1 - alpha) + heat * 255 * alpha).astype("uint8")


def _class_index(model_classes, class_names, wanted):
    if wanted is None:
        return None
    text = str(wanted)
    if class_names and text in class_names:
        return class_names.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < model_classes:
        return int(text)
    known = f" ({', '.join(map(str, class_names[:20]))})" if class_names else ""
    close = difflib.get_close_matches(text, [str(n) for n in class_names or []], n=2, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise KzooError(f"No class {text!r}: give an index from 0 to {model_classes - 1} or a class name of the run"
                    f"{known}.{hint}")


def _heatmap_name(path, taken):
    """``<stem>_gradcam.png``, numbered when two images share a file name (``a/1.png``, ``b/1.png``)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    name, n = f"{stem}_gradcam.png", 1
    while name in taken:
        n += 1
        name = f"{stem}_{n}_gradcam.png"
    taken.add(name)
    return name


def explain(run, images, *, layer=None, target_class=None, output=None, invert=None, trust=False, backend=None,
            alpha=0.45, colormap="jet", batch_size=32):
    """Grad-CAM heatmaps of a classification run over image files (``kzoo explain``).

    Args:
        run: a run folder or ``.keras`` checkpoint of an image classifier.
        images: image files, folders and glob patterns (as ``kzoo predict`` takes them).
        layer: the feature-map layer to explain (default: the last feature map before the ``logits`` head).
        target_class: a class index or one of the run's class names to explain; default each image's predicted class.
        output: the folder to write ``<image>_gradcam.png`` into (default ``RUN/explain``).
        invert: as in :func:`kzoo.engine.evaluation.predict`.
        batch_size: images read and explained at a time.

    Returns:
        ``[{"image", "heatmap", "class", "name", "probability", "layer"}]``, one per image; ``probability`` is
        the model's probability of the explained class.
    """
    from kzoo.backend import set_backend

    set_backend(backend)
    from PIL import Image

    from kzoo.data.image_folder import as_model_input, expand_image_paths, load_image
    from kzoo.engine.checkpoints import atomic_write, load_model
    from kzoo.engine.forward import inference_forward
    from kzoo.engine.runs import read_run_config, run_dir_of
    from kzoo.errors import CheckpointError
    from kzoo.tasks.base import predict_proba

    if not os.path.exists(run):
        raise CheckpointError(f"No such run folder or checkpoint: {run}")
    paths = expand_image_paths(images)
    model = load_model(run, trust=trust, compile=False)
    input_shape = tuple(model.inputs[0].shape[1:])
    if len(input_shape) != 3:
        raise KzooError(f"{model.name} is not a convolutional model: it takes inputs of shape {input_shape}, not "
                        "images, so Grad-CAM has nothing to localize.")
    chosen = _chosen_layer(model, layer)
    config = read_run_config(run_dir_of(run)) or {}
    class_names = config.get("class_names")
    num_classes = int(model.outputs[0].shape[-1])
    wanted = _class_index(num_classes, class_names, target_class)
    if invert is None and config.get("data_folder"):
        invert = False
    output = output or os.path.join(run_dir_of(run), "explain")
    os.makedirs(output, exist_ok=True)
    results, taken = [], set()
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        pictures = [load_image(path, input_shape) for path in chunk]
        x = np.stack([as_model_input(p, input_shape, invert) for p in pictures])
        probs = predict_proba(model, x, forward=inference_forward)
        classes = np.full(len(x), wanted) if wanted is not None else probs.argmax(axis=1)
        cams = gradcam_maps(model, x, classes, layer=chosen.name)
        for path, picture, cam, index, row in zip(chunk, pictures, cams, classes, probs):
            target = os.path.join(output, _heatmap_name(path, taken))
            pixels = overlay(picture, cam, alpha=alpha, colormap=colormap)  # over the image as the user has it
            atomic_write(target, lambda tmp, pixels=pixels: Image.fromarray(pixels).save(tmp, format="PNG"))
            index = int(index)
            results.append({"image": str(path), "heatmap": target, "class": index,
                            "name": class_names[index] if class_names and index < len(class_names) else str(index),
                            "probability": round(float(row[index]), 6), "layer": chosen.name})
    return results
