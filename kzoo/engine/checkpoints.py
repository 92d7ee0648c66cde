"""Checkpoints: written atomically, loaded safely.

A checkpoint is written to a temporary file in the same folder and renamed over the old one, so a crash or a
Ctrl-C mid-write never leaves a broken file where a good one was. Loading uses Keras ``safe_mode=True`` unless
the user passes ``trust=True`` (``--trust``): a ``.keras`` file with a lambda layer cannot run code otherwise.
"""

import json
import contextlib
import os
import sys
import tempfile
import zipfile

from kzoo.errors import CheckpointError, KzooError
from kzoo.registry import first_line


def _atomic_write(path, write):
    folder = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    suffix = ".weights.h5" if path.endswith(".weights.h5") else os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    os.unlink(tmp)  # keras refuses to overwrite without asking; the name is all we need
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_copy(source, path):
    """Copy a finished checkpoint file atomically."""
    import shutil

    _atomic_write(path, lambda tmp: shutil.copyfile(source, tmp))


@contextlib.contextmanager
def _tensorflow_left_unloaded():
    """Keep Keras's serialiser from importing TensorFlow on the torch and jax backends.

    ``serialize_keras_object`` asks ``tf.available`` (to recognise ``tf.TensorShape``), which imports
    TensorFlow whenever it is installed: seconds and hundreds of MB at the first checkpoint of a torch run.
    A model built on another backend holds no TensorFlow objects, so the answer "unavailable" is exact.
    """
    import keras
    from keras.src.utils import module_utils

    lazy = module_utils.tensorflow
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules or lazy._available is not None:
        yield
        return
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = None


def atomic_save_model(model, path, *, overwrite=True):
    """Save a whole model (``.keras``) atomically."""
    if os.path.exists(path) and not overwrite:
        raise KzooError(f"{path} already exists; pass --overwrite to replace it.")

    def save(tmp):
        with _tensorflow_left_unloaded():
            model.save(tmp)

    _atomic_write(path, save)


def atomic_save_weights(model, path):
    """Save a model's weights (``.weights.h5``) atomically."""
    _atomic_write(path, lambda tmp: model.save_weights(tmp))


def _registered_names(config):
    """Every ``package>Class`` registered name inside a saved model's config (custom layers, losses, ...)."""
    found, stack = set(), [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            name = item.get("registered_name")
            if isinstance(name, str) and ">" in name:
                found.add(name)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _check_plugin_layers(path, failures, compile):
    """Raise before Keras does when the file needs custom layers that no installed plugin registered.

    Args:
        path: a ``.keras`` file (a zip archive).
        failures: what :func:`kzoo.plugins.import_plugin_layers` returned.
        compile: whether the compile config (loss, metrics) will be deserialised too.

    Raises:
        CheckpointError: naming each missing layer, the plugin package and distribution, and what to do.
    """
    import keras

    from kzoo.plugins import explain_missing_layers

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError, zipfile.BadZipFile):
        return  # not readable here: Keras reports the malformed file below
    if not compile and isinstance(config, dict):
        config.pop("compile_config", None)
    missing = {n for n in _registered_names(config) if keras.saving.get_registered_object(n) is None}
    if missing:
        raise CheckpointError(f"Cannot load {path}: {explain_missing_layers(missing, failures)}")


def load_model(path, *, trust=False, compile=True):
    """Load a ``.keras`` model or a run folder's best checkpoint, safely.

    Args:
        path: a ``.keras`` file, or a run folder (its ``best.keras`` is used, then ``last.keras``).
        trust: allow unsafe content (lambda layers with Python code). Only for files you trust.
    """
    from kzoo.engine.archive_guard import check_keras_file

    if os.path.isdir(path):
        for name in ("best.keras", "last.keras"):
            candidate = os.path.join(path, name)
            if os.path.exists(candidate):
                path = candidate
                break
        else:
            raise CheckpointError(f"{path} is a folder without best.keras or last.keras; is it a kzoo run folder?")
    if not os.path.exists(path):
        raise CheckpointError(f"No such checkpoint: {path}")
    if not path.endswith(".keras"):
        raise CheckpointError(f"Expected a .keras file or a run folder. Received: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a valid .keras file (truncated or corrupt: not a zip archive).")
    check_keras_file(path)  # bounded sizes before anything is inflated (or keras imported)

    import keras

    import kzoo.layers  # noqa: F401  registers kzoo's serialisable layers and losses
    from kzoo.engine.kernels import install
    from kzoo.plugins import import_plugin_layers

    _check_plugin_layers(path, import_plugin_layers(), compile)
    install()
    try:
        return keras.saving.load_model(path, safe_mode=not trust, compile=compile)
    except ValueError as exc:
        message = str(exc)
        if "safe_mode" in message or "lambda" in message.lower():
            raise CheckpointError(
                f"{path} contains code (e.g. a Lambda layer) that Keras will not run in safe mode. "
                f"Pass --trust (trust=True) only if you trust where the file came from."
            ) from None
        raise CheckpointError(f"Cannot load {path}: {message.splitlines()[0]}") from None
    except (TypeError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"Cannot load {path} ({type(exc).__name__}: {first_line(exc)}); the file may be truncated or corrupt."
        ) from None
