"""The Keras versions kzoo is tested with, checked before Keras is imported.

kzoo's engine reaches into ``keras.src`` internals (the torch optimizers, the RNN kernels, the batch-norm layer,
the trainer's jit check), which move between Keras minor versions. An untested Keras is refused with a clear
message instead of failing later deep inside a training step; ``KZOO_ALLOW_UNTESTED_KERAS=1`` overrides it.
The range equals the ``keras`` pin in ``pyproject.toml`` (a test keeps them the same).
"""

import importlib.metadata
import os
import re
import sys

from kzoo.errors import BackendError

TESTED_KERAS = ">=3.15.1,<3.16"
_LOWEST = (3, 15, 1)
_FIRST_UNTESTED = (3, 16)
ALLOW_UNTESTED_ENV = "KZOO_ALLOW_UNTESTED_KERAS"

_warned = False


def _release(version):
    """``(major, minor, micro)`` from a version string such as ``3.15.1`` or ``3.16.0rc1``; None if unreadable."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    return None if match is None else tuple(int(part or 0) for part in match.groups())


def is_tested(version):
    """Whether Keras ``version`` lies in :data:`TESTED_KERAS`."""
    release = _release(version)
    return release is not None and _LOWEST <= release and release[:2] < _FIRST_UNTESTED


def installed_keras_version():
    """The installed Keras distribution's version (read from its metadata: Keras is not imported)."""
    try:
        return importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:
        raise BackendError(f"kzoo needs Keras 3 (keras{TESTED_KERAS}), which is not installed. "
                           f"Install it with: pip install 'keras{TESTED_KERAS}'") from None


def require_tested_keras(version=None):
    """Raise :class:`BackendError` unless Keras ``version`` (default: the installed one) is tested with kzoo.

    With ``KZOO_ALLOW_UNTESTED_KERAS=1`` an untested version only warns, once per process.
    """
    global _warned
    version = installed_keras_version() if version is None else version
    if is_tested(version):
        return version
    message = (f"kzoo is tested with keras{TESTED_KERAS}; found keras {version}. "
               f"kzoo uses Keras internals that change between minor versions. Install a tested Keras with: "
               f"pip install 'keras{TESTED_KERAS}'")
    if os.environ.get(ALLOW_UNTESTED_ENV, "").strip().lower() in ("1", "true", "yes"):
        if not _warned:
            print(f"Warning: {message} (going on: {ALLOW_UNTESTED_ENV} is set).", file=sys.stderr)
            _warned = True
        return version
    raise BackendError(f"{message}, or set {ALLOW_UNTESTED_ENV}=1 to try it anyway.")
