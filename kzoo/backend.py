"""Choose the Keras backend before `keras` is imported.

Order of precedence: an explicit choice (``--backend``), then ``KERAS_BACKEND``, then torch.
"""

import importlib.util
import os
import sys

from kzoo.errors import BackendError
from kzoo.keras_version import require_tested_keras

BACKENDS = {
    # backend name -> (module that must be importable, extra to install)
    "torch": ("torch", "torch"),
    "tensorflow": ("tensorflow", "tensorflow"),
    "jax": ("jax", "jax"),
}
DEFAULT_BACKEND = "torch"


def requested_backend(name=None):
    """The backend a command will use: ``name``, else ``KERAS_BACKEND``, else torch."""
    return (name or os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND).lower()


def installed_backends():
    """Backends whose framework can be imported here (checked without importing it)."""
    return [b for b, (module, _) in BACKENDS.items() if importlib.util.find_spec(module) is not None]


def set_backend(name=None):
    """Fix the Keras backend for this process and return its name.

    Must run before the first ``import keras``; choosing a different backend afterwards is an error,
    because Keras reads the backend once at import time. An untested Keras version is refused here
    (:mod:`kzoo.keras_version`), before anything imports it.
    """
    backend = requested_backend(name)
    if backend not in BACKENDS:
        raise BackendError(
            f"Unknown backend {backend!r}. Choose one of: {', '.join(BACKENDS)}."
        )
    module, extra = BACKENDS[backend]
    if importlib.util.find_spec(module) is None:
        hint = "pip install 'kzoo[torch]' torch==2.13.0  (CPU build)" if backend == "torch" else (
            f"pip install 'kzoo[{extra}]'"
        )
        raise BackendError(
            f"The {backend} backend needs the {module!r} package, which is not installed. "
            f"Install it with: {hint}"
        )
    require_tested_keras()
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != backend:
            raise BackendError(
                f"Keras is already running on {current!r}; the backend must be chosen before keras is "
                f"imported. Received: backend={backend!r}."
            )
        return backend
    os.environ["KERAS_BACKEND"] = backend
    # Keep TensorFlow's C++ start-up chatter out of the user's terminal.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return backend
