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


_FORCED_HOST_DEVICES = "--xla_force_host_platform_device_count"


def configure_devices(backend, count):
    """Give the framework ``count`` devices to train on, before it initialises.

    On a machine with GPUs the real ones are used and nothing is configured here (``--devices`` was checked
    against them). On a CPU-only machine ``count`` > 1 simulates that many devices, so that the distributed
    path runs: ``count`` logical CPU devices on tensorflow (``tf.config.set_logical_device_configuration``),
    ``count`` XLA host devices on jax (``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``, read once
    when jax starts). torch needs nothing: its devices are processes (:mod:`kzoo.engine.distributed.launch`).

    Both settings are fixed once the framework has started; a process that already runs it with too few
    devices gets a :class:`~kzoo.errors.BackendError` saying so.
    """
    if count <= 1 or backend == "torch":
        return
    if backend == "jax":
        _configure_jax(count)
    elif backend == "tensorflow":
        _configure_tensorflow(count)


def _jax_started():
    jax = sys.modules.get("jax")
    if jax is None:
        return False
    from jax._src import xla_bridge  # jax has no public "are the backends up?" question

    return bool(getattr(xla_bridge, "_backends", None))


def _configure_jax(count):
    if not _jax_started():
        flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(_FORCED_HOST_DEVICES)]
        os.environ["XLA_FLAGS"] = " ".join([*flags, f"{_FORCED_HOST_DEVICES}={count}"])
        if "jax" in sys.modules:  # imported but not started: jax reads XLA_FLAGS when its backends start
            import jax

            if jax.default_backend() != "cpu" or len(jax.devices()) >= count:
                return
        else:
            return
    import jax

    devices = jax.devices()
    if len(devices) < count:
        raise BackendError(
            f"--devices {count}: jax already started in this process with {len(devices)} "
            f"{devices[0].platform.upper()} device(s), and its device count cannot change afterwards. Start a "
            f"new process (the kzoo CLI does), or set XLA_FLAGS={_FORCED_HOST_DEVICES}={count} before jax "
            f"is imported."
        )


def _configure_tensorflow(count):
    import tensorflow as tf  # listing physical devices does not start the runtime

    if tf.config.list_physical_devices("GPU"):
        return  # real GPUs; kzoo.engine.distributed.parse_devices checked the count against them
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) >= count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:  # "Virtual devices cannot be modified after being initialized"
        have = len(tf.config.list_logical_devices("CPU"))
        if have >= count:
            return
        raise BackendError(
            f"--devices {count}: TensorFlow already started in this process with {have} CPU device(s), and "
            f"logical devices cannot be added afterwards. Start a new process (the kzoo CLI does), or call "
            f"kzoo.backend.configure_devices('tensorflow', {count}) before anything runs on TensorFlow."
        ) from None


def default_threads(cores, load):
    """Intra-op threads for a machine of ``cores`` cores whose 1-minute load average is ``load``: the cores the
    other processes leave idle, at least 1.

    More threads than idle cores oversubscribe them: on 2 cores at load 3-4, torch's LSTM epoch took 87 s with
    2 threads, whose workers spin-wait for each other at every op (docs/benchmarks.md, "Threads").
    """
    return max(1, min(cores, cores - int(load)))


def available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def choose_threads(requested=None):
    """``requested`` (``--threads``), else :func:`default_threads` of this machine now."""
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise BackendError(f"threads must be an integer >= 1. Received: threads={requested!r}.")
        return requested
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (Windows): every core
        load = 0.0
    return default_threads(available_cores(), load)


def use_threads(backend, threads=None):
    """Give ``backend``'s intra-op thread pool :func:`choose_threads` threads; returns the number.

    Call it after :func:`set_backend`: torch takes the number at any time (``torch.set_num_threads``);
    TensorFlow until its runtime starts (``tf.config.threading``; later it keeps the pool it has); jax through
    ``XLA_FLAGS`` read when it starts (XLA's CPU client has one switch: one thread, or one per core).
    """
    count = choose_threads(threads)
    if backend == "torch":
        import torch

        torch.set_num_threads(count)
    elif backend == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(count)
        except RuntimeError:  # "cannot be modified after initialization": the process keeps its pool
            return tf.config.threading.get_intra_op_parallelism_threads() or count
    elif backend == "jax" and not _jax_started():
        flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(_EIGEN_THREADS)]
        os.environ["XLA_FLAGS"] = " ".join([*flags, f"{_EIGEN_THREADS}={'false' if count == 1 else 'true'}"])
    return count


_EIGEN_THREADS = "--xla_cpu_multi_thread_eigen"
