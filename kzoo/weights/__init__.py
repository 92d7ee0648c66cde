"""Start a model from published or saved weights: ``create_model(name, weights=...)``, ``--weights``.

``weights`` is one of:

- ``"torchvision"`` or ``"imagenet"`` (keras.applications): the published file listed in the model's spec
  (``kzoo info MODEL``), fetched once with ``keras.utils.get_file`` into ``$KERAS_HOME/models``;
- a torchvision ``state_dict`` file (``.pth``/``.pt``), converted by :mod:`kzoo.weights.torchvision`;
- a keras.applications ``.h5`` file, read by :mod:`kzoo.weights.keras_applications`;
- a kzoo ``.keras`` model or ``.weights.h5`` file of the same model.

A file is read once; when its name carries a hash (torchvision's ``resnet18-f37072fd.pth``: the first 8 hex
digits of the sha256) or it is a published file with a known md5 (keras.applications), the bytes are checked.

Fine-tuning adaptations, each announced through ``notify``: a classifier (``logits``) whose class count
differs keeps its fresh initialisation; a first convolution published for 3 channels, in a model built for 1,
gets its kernel summed over the input channels.
"""

import hashlib
import os
import re

from kzoo.errors import KzooError, first_line

PUBLISHERS = ("torchvision", "imagenet")
_HASHED_NAME = re.compile(r"-([0-9a-f]{8,64})\.(?:pth|pt)$")


def published(info, publisher):
    """The spec's entry for ``publisher``'s weights of a model, or a KzooError naming what exists."""
    available = info.get("weights") or {}
    if publisher not in available:
        have = ", ".join(available) or "none"
        raise KzooError(f"{info['name']} has no published {publisher} weights (published: {have}). Pass a "
                        f"file instead: --weights PATH.")
    return available[publisher]


def cache_path(entry):
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models", entry["file"])


def fetch(entry):
    """The local path of a published file: the cached copy, else downloaded with ``keras.utils.get_file``."""
    target = cache_path(entry)
    if os.path.exists(target):
        return target
    import keras

    try:
        return keras.utils.get_file(entry["file"], entry["url"],
                                    cache_dir=os.path.dirname(os.path.dirname(target)), cache_subdir="models")
    except Exception as exc:
        reason = first_line(exc, type(exc).__name__)
        raise KzooError(f"Cannot download {entry['file']} ({reason}). Download it on a machine with internet "
                        f"access from {entry['url']} and put it at {target} (or pass --weights "
                        f"/path/to/{entry['file']}).") from None


def source_of(weights, info):
    """``(path, publisher kind, input normalisation mode)`` for a ``weights`` argument, before the model exists.

    The kind is ``"torchvision"``, ``"keras_applications"`` or ``"kzoo"``; the normalisation is what the
    weights expect (``"none"`` for a kzoo file, which carries its own option).
    """
    family = info.get("family")
    if weights in PUBLISHERS:
        entry = published(info, weights)
        path = fetch(entry)
        kind = "torchvision" if weights == "torchvision" else "keras_applications"
        return path, kind, entry["preprocessing"]
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise KzooError(f"No such weights file: {path}. Expected a file (.pth, .h5, .keras, .weights.h5) or one "
                        f"of {', '.join(PUBLISHERS)}.")
    if path.endswith((".pth", ".pt")):
        from kzoo.weights import torchvision

        return path, "torchvision", torchvision.PREPROCESSING
    if path.endswith((".keras", ".weights.h5")):
        return path, "kzoo", "none"
    if path.endswith(".h5"):
        from kzoo.weights import keras_applications

        if family not in keras_applications.PREPROCESSING:
            raise KzooError(f"{path}: keras.applications weights fit vgg16/19 and densenet121/169/201, not "
                            f"{info['name']}.")
        return path, "keras_applications", keras_applications.PREPROCESSING[family]
    raise KzooError(f"{path}: unknown weights format; expected .pth/.pt (torchvision), .h5 (keras.applications), "
                    f".keras or .weights.h5 (kzoo).")


def _read_checked(path, info):
    """The file's bytes, after checking them against the hash its name or the spec gives."""
    with open(path, "rb") as handle:
        data = handle.read()
    name = os.path.basename(path)
    match = _HASHED_NAME.search(name)
    if match:
        digest = hashlib.sha256(data).hexdigest()
        if not digest.startswith(match[1]):
            raise KzooError(f"{path} is corrupt or not the published file: its sha256 starts with {digest[:8]}, "
                            f"its name says {match[1]}. Download it again.")
    for entry in (info.get("weights") or {}).values():
        if entry["file"] == name and "md5" in entry and hashlib.md5(data).hexdigest() != entry["md5"]:
            raise KzooError(f"{path} is corrupt or not the published file: its md5 is not {entry['md5']}. "
                            f"Download it again.")
    return data


def _weighted_layers(model):
    """Every layer with weights, nested models flattened, in graph order."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _weighted_layers(layer)
        elif layer.weights:
            yield layer


def assign(model, arrays, source, notify=print):
    """Set ``model``'s weights from ``{layer name: [arrays]}``; every layer and every array must be used.

    The ``logits`` layer is left as initialised when its shape differs (another class count), and a first
    convolution read for 3 input channels is summed to 1 when the model takes 1.
    """
    import keras
    import numpy as np

    remaining = dict(arrays)
    missing, mismatched = [], []
    weighted = list(_weighted_layers(model))
    first_conv = next((layer for layer in weighted if isinstance(layer, keras.layers.Conv2D)), None)
    for layer in weighted:
        values = remaining.pop(layer.name, None)
        if values is None:
            missing.append(layer.name)
            continue
        wanted = [tuple(w.shape) for w in layer.weights]
        values = [np.asarray(v) for v in values]
        if layer is first_conv and values[0].ndim == 4 and values[0].shape[2] == 3 and wanted[0][2] == 1:
            values[0] = values[0].sum(axis=2, keepdims=True)
            notify(f"{layer.name}: kernel summed over the 3 input channels of {source} for 1-channel inputs.")
        got = [v.shape for v in values]
        if got == wanted:
            layer.set_weights(values)
        elif layer.name == "logits":
            notify(f"logits: {source} has {got[0][-1]} classes, the model {wanted[0][-1]}; the classifier head "
                   f"is re-initialised.")
        else:
            mismatched.append(f"{layer.name} (file {got}, model {wanted})")
    if missing or remaining or mismatched:
        details = []
        if mismatched:
            details.append(f"shapes differ: {'; '.join(mismatched[:3])}")
        if missing:
            details.append(f"the file lacks {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
        if remaining:
            extra = list(remaining)
            details.append(f"the model lacks {', '.join(extra[:4])}{' ...' if len(extra) > 4 else ''}")
        raise KzooError(f"{source} does not fit {model.name} as built ({'; '.join(details)}). Is it for another "
                        f"variant, or were model options (width_multiplier, small_stem, ...) different?")


def load_into(model, path, kind, info, notify=print):
    """Read ``path`` once (checked) and set ``model``'s weights from it."""
    source = os.path.basename(path)
    if kind == "kzoo":
        return _load_kzoo(model, path, notify)
    data = _read_checked(path, info)
    if kind == "torchvision":
        from kzoo.weights import torchvision as publisher

        raw = publisher.read_state_dict(data, source)
    else:
        from kzoo.weights import keras_applications as publisher

        raw = publisher.read_h5(data, source)
    assign(model, publisher.convert(raw, info.get("family"), model), source, notify)


def _load_kzoo(model, path, notify):
    """A kzoo file: a ``.keras`` model matched by layer name (so the head can change), a ``.weights.h5`` as is."""
    source = os.path.basename(path)
    if path.endswith(".keras"):
        from kzoo.engine.checkpoints import load_model

        saved = load_model(path, compile=False)
        assign(model, {layer.name: layer.get_weights() for layer in _weighted_layers(saved)}, source, notify)
        return
    try:
        model.load_weights(path)
    except Exception as exc:
        raise KzooError(f"{source} does not fit {model.name} as built ({first_line(exc)}). A .weights.h5 "
                        f"file needs the same model and options; to change the classes, start from the run's "
                        f".keras file.") from None
