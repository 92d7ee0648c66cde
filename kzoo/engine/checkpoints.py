"""Checkpoints: written atomically and durably, loaded safely.

Every file is written to a temporary file with a unique name in the same folder, flushed to disk (``fsync``),
renamed over the old one, and the folder is flushed too: a crash, a ``kill -9`` or a power cut mid-write never
leaves a broken file where a good one was. A full disk is checked for before a checkpoint is written and reported
as :class:`DiskFullError` (the old file is kept). ``.weights.h5`` files are copied out of the ``.keras`` archive
(it holds the same HDF5 file), so a pair always holds the same weights and HDF5 never writes to the disk itself:
an HDF5 file that fails to write on a full disk crashes the interpreter at exit (h5py 3.14, HDF5 1.14).
Loading uses Keras ``safe_mode=True`` unless the user passes ``trust=True`` (``--trust``): a ``.keras`` file with a
lambda layer cannot run code otherwise.
"""

import json
import contextlib
import errno
import hashlib
import os
import shutil
import sys
import tempfile
import zipfile

from kzoo.errors import CheckpointError, KzooError, first_line

TEMPORARY_PREFIX = ".kzoo-tmp-"
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_SLACK = 1 << 20  # headroom beyond a file's estimated size (archive headers, config, metadata)


class DiskFullError(CheckpointError):
    """Not enough free space to write a file; the previous version of the file is kept."""


def _megabytes(n):
    return f"{n / 2**20:,.1f} MB"


def disk_full_error(path, needed=None):
    """A :class:`DiskFullError` naming ``path``, the free space on its disk, and what was needed if known."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        free = _megabytes(shutil.disk_usage(folder).free)
    except OSError:
        free = "unknown"
    need = f", about {_megabytes(needed)} needed" if needed else ""
    return DiskFullError(f"Not enough disk space to write {path}: {free} free in {folder}{need}.")


def is_disk_full(exc):
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


def ensure_free_space(path, needed):
    """Raise :class:`DiskFullError` before writing ``needed`` bytes next to ``path`` if they cannot fit."""
    folder = os.path.dirname(os.path.abspath(path))
    if shutil.disk_usage(folder).free < needed + _SLACK:
        raise disk_full_error(path, needed + _SLACK)


def fsync_path(path):
    """Flush a file, or a folder's entries (after a rename), to the disk. Folders cannot be opened on Windows."""
    if os.path.isdir(path) and os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_path(path):
    """A fresh name in ``path``'s folder (same suffix, so writers that infer the format from it still do)."""
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    suffix = ".weights.h5" if name.endswith(".weights.h5") else os.path.splitext(name)[1]
    fd, tmp = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, suffix=suffix, dir=folder)
    os.close(fd)
    os.unlink(tmp)  # keras refuses to overwrite without asking; the name is all we need
    return tmp


def write_durably(path, write, *, needed=0):
    """Write a file with ``write(tmp)`` into a unique temporary name, flush it, and return that name.

    The caller renames it into place (:func:`install`); on any failure the temporary file is removed. A full disk
    (checked first when ``needed`` bytes are known) raises :class:`DiskFullError`.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if needed:
        ensure_free_space(path, needed)
    tmp = temporary_path(path)
    try:
        write(tmp)
        if os.path.exists(tmp):
            fsync_path(tmp)
        return tmp
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if is_disk_full(exc):
            raise disk_full_error(path, needed or None) from None
        raise


def install(tmp, path):
    """Rename a flushed temporary file over ``path`` and flush the folder, so the rename survives a crash."""
    os.replace(tmp, path)
    fsync_path(os.path.dirname(os.path.abspath(path)))


def atomic_write(path, write, *, needed=0):
    """Replace ``path`` atomically with what ``write(tmp)`` writes (nothing is replaced if it writes nothing)."""
    tmp = write_durably(path, write, needed=needed)
    if os.path.exists(tmp):
        install(tmp, path)


def atomic_write_text(path, text):
    """Replace a small text file (config, state, CSV) atomically and durably."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)

    atomic_write(path, write)


def file_digest(path):
    """SHA-256 of a file: how a run's ``state.json`` names the exact checkpoint files it commits."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_bytes(model):
    """The bytes a model's variables (optimizer slots included) take: a checkpoint file is about this large."""
    variables = list(getattr(model, "variables", []))
    if getattr(model, "optimizer", None) is not None:
        variables += list(model.optimizer.variables)
    total = 0
    for variable in variables:
        size = 1
        for dim in variable.shape:
            size *= int(dim)
        total += size * _itemsize(variable.dtype)
    return total


def _itemsize(dtype):
    import numpy as np

    try:
        return np.dtype(str(dtype).replace("bfloat16", "float16")).itemsize
    except TypeError:
        return 4


@contextlib.contextmanager
def _tensorflow_left_unloaded():
    """Keep Keras's serialiser from importing TensorFlow on the torch and jax backends.

    ``serialize_keras_object`` asks ``tf.available`` (to recognise ``tf.TensorShape``), which imports
    TensorFlow whenever it is installed: seconds and hundreds of MB at the first checkpoint of a torch run.
    A model built on another backend holds no TensorFlow objects, so the answer "unavailable" is exact.
    """
    import keras
    from kzoo.engine._keras_compat import lazy_tensorflow_module

    lazy = lazy_tensorflow_module()
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules or lazy._available is not None:
        yield
        return
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = None


def _save_keras(model, tmp):
    with _tensorflow_left_unloaded():
        model.save(tmp)


def atomic_save_model(model, path, *, overwrite=True):
    """Save a whole model (``.keras``) atomically."""
    if os.path.exists(path) and not overwrite:
        raise KzooError(f"{path} already exists; pass --overwrite to replace it.")
    atomic_write(path, lambda tmp: _save_keras(model, tmp), needed=model_bytes(model))


def write_checkpoint_pair(model, keras_path, weights_path):
    """Write a model's ``.keras`` and ``.weights.h5`` to flushed temporary files; return their two names.

    The weights file is the ``.keras`` archive's own ``model.weights.h5`` (what ``save_weights`` writes, optimizer
    variables included), so both hold the same weights. Nothing is renamed into place: the caller installs
    both (:func:`install`) and then records them.
    """
    needed = model_bytes(model)
    ensure_free_space(keras_path, 2 * needed)
    keras_tmp = write_durably(keras_path, lambda tmp: _save_keras(model, tmp), needed=needed)
    try:
        def extract(tmp):
            with zipfile.ZipFile(keras_tmp) as archive, archive.open("model.weights.h5") as member, \
                    open(tmp, "wb") as handle:
                shutil.copyfileobj(member, handle, 1 << 20)

        weights_tmp = write_durably(weights_path, extract, needed=needed)
    except BaseException:
        os.unlink(keras_tmp)
        raise
    return keras_tmp, weights_tmp


def _saved_config(path, compile):
    """The model config inside a ``.keras`` archive (without ``compile_config`` unless ``compile``), or ``None``."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError, zipfile.BadZipFile):
        return None  # not readable here: Keras reports the malformed file
    if not isinstance(config, dict):
        return None
    if not compile:
        config.pop("compile_config", None)
    return config


def _objects(config):
    """Every serialised object (a dict with ``class_name``) inside a saved model's config."""
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "class_name" in item:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _registered_names(config):
    """Every ``package>Class`` registered name inside a saved model's config (custom layers, losses, ...)."""
    names = (item.get("registered_name") for item in _objects(config))
    return {name for name in names if isinstance(name, str) and ">" in name}


def _active_backend_classes(config):
    """``custom_objects`` giving the backend-specific Keras classes a saved file names the active backend's own.

    On torch, ``keras.optimizers.Adam(...)`` builds a ``keras.src.backend.torch.optimizers.torch_adam.Adam``,
    and Keras records that class in the files it saves. Loaded on tensorflow or jax, such a file imports torch
    (and fails where it is not installed) and gives the model an optimizer that cannot update its variables.
    The public ``keras.optimizers`` class of the same name builds the active backend's optimizer.
    """
    import keras

    classes = {}
    for item in _objects(config):
        module = item.get("module")
        if isinstance(module, str) and module.startswith("keras.src.backend.") and ".optimizers." in module:
            public = getattr(keras.optimizers, str(item["class_name"]), None)
            if isinstance(public, type):
                classes[item.get("registered_name") or item["class_name"]] = public
    return classes


def _check_plugin_layers(path, config, failures):
    """Raise before Keras does when the file needs custom layers that no installed plugin registered.

    Args:
        path: a ``.keras`` file (a zip archive).
        config: its model config (:func:`_saved_config`).
        failures: what :func:`kzoo.plugins.import_plugin_layers` returned.

    Raises:
        CheckpointError: naming each missing layer, the plugin package and distribution, and what to do.
    """
    import keras

    from kzoo.plugins import explain_missing_layers

    missing = {n for n in _registered_names(config) if keras.saving.get_registered_object(n) is None}
    if missing:
        raise CheckpointError(f"Cannot load {path}: {explain_missing_layers(missing, failures)}")


def load_model(path, *, trust=False, compile=True):
    """Load a ``.keras`` model or a run folder's best checkpoint, safely (``kzoo.load_model``).

    The one call a plain Keras program needs for any file kzoo writes, on any backend (README, "Loading kzoo
    files in your own code"): it registers kzoo's layers and the installed plugins' before Keras reads the file.

    Args:
        path: a ``.keras`` file, or a run folder (its ``best.keras`` is used, then ``last.keras``).
        trust: allow unsafe content (lambda layers with Python code). Only for files you trust.
        compile: also restore the optimizer, loss and metrics the file was compiled with.
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
    from kzoo.engine.kernels import accelerate
    from kzoo.plugins import import_plugin_layers

    config = _saved_config(path, compile)
    failures = import_plugin_layers()
    if config is not None:
        _check_plugin_layers(path, config, failures)
    try:
        model = keras.saving.load_model(path, safe_mode=not trust, compile=compile,
                                        custom_objects=_active_backend_classes(config or {}))
    except ValueError as exc:
        message = str(exc)
        if "safe_mode" in message or "lambda" in message.lower():
            raise CheckpointError(
                f"{path} contains code (e.g. a Lambda layer) that Keras will not run in safe mode. "
                f"Pass --trust (trust=True) only if you trust where the file came from."
            ) from None
        raise CheckpointError(f"Cannot load {path}: {first_line(message)}") from None
    except (TypeError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"Cannot load {path} ({type(exc).__name__}: {first_line(exc)}); the file may be truncated or corrupt."
        ) from None
    accelerate(model)  # the engine's faster kernels, for this model's layers only (kzoo.engine.kernels)
    return model
