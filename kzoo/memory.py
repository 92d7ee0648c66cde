"""Memory a model needs, estimated from shapes before anything large is allocated.

A model is first built with its weights *deferred* (Keras creates variables inside a ``StatelessScope``
without initialising them, so the functional graph and every shape exist while no weight is allocated). Its
parameter bytes and per-sample activation bytes are read from those shapes and compared with the memory this
machine has available; only a model that fits gets its weights. ``kzoo summary vgg16 --input-shape
20000,20000,3`` asks for 3.3 TB of weights (the first dense layer after a 625x625x512 feature map) and is
refused with the estimate, where it used to die in the allocator.
"""

import contextlib
import math
import os

from kzoo.errors import ResourceError

_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int8": 1, "uint8": 1, "int16": 2,
                "int32": 4, "int64": 8, "bool": 1}


def available_memory():
    """Bytes of memory available to a new allocation (``MemAvailable``; the free pages where it is missing)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None  # unknown (not Linux or BSD): nothing is refused


def format_bytes(n):
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"


def _bytes(dtype):
    return _DTYPE_BYTES.get(str(getattr(dtype, "name", dtype)).replace("torch.", ""), 4)


def _per_sample_bytes(tensor):
    shape = [d for d in tensor.shape[1:] if d is not None]
    return math.prod(shape) * _bytes(tensor.dtype)


def activation_bytes(model):
    """Bytes of every layer output of one sample, the inputs included (a nested model counts once per call)."""
    total = 0
    for layer in model.layers:
        calls = [n for n in getattr(layer, "_inbound_nodes", []) if n.output_tensors]
        if hasattr(layer, "layers") and hasattr(layer, "inputs"):
            total += activation_bytes(layer) * len(calls)
            continue
        total += sum(_per_sample_bytes(t) for node in calls for t in node.output_tensors)
    return total


def weight_bytes(model):
    return sum(math.prod(v.shape) * _bytes(v.dtype) for v in model.weights)


def _refuse_beyond(needed, what, available=None):
    available = available_memory() if available is None else available
    if available is not None and needed > available:
        raise ResourceError(f"{what} needs about {format_bytes(needed)} of memory; this machine has "
                            f"{format_bytes(available)} available. Use a smaller input shape or batch size.")


def create_model_within_memory(name, *, input_shape=None, num_classes=None, available=None, **options):
    """:func:`kzoo.factory.create_model`, refusing (``ResourceError``) a model whose weights cannot fit.

    Args:
        available: bytes to fit in (default: :func:`available_memory`).
    """
    from kzoo.backend import set_backend
    from kzoo.factory import create_model

    set_backend()  # before keras is imported for the first time
    from kzoo.engine._keras_compat import discard_uninitialized_variables, initialize_all_variables, stateless_scope

    weights = options.pop("weights", None)
    try:
        with stateless_scope():
            model = create_model(name, input_shape=input_shape, num_classes=num_classes, **options)
        params = sum(math.prod(v.shape) for v in model.weights)
        shape = "x".join(str(d) for d in (model.inputs[0].shape[1:] if model.inputs else ()))
        _refuse_beyond(weight_bytes(model), f"{name} at input shape {shape} ({params:,} parameters)", available)
    except BaseException:
        discard_uninitialized_variables()  # never allocate what was refused
        raise
    if weights is not None:  # weights are read into allocated variables: build again, for real
        discard_uninitialized_variables()
        with out_of_memory_as_error(f"Building {name}"):
            return create_model(name, input_shape=input_shape, num_classes=num_classes, weights=weights, **options)
    with out_of_memory_as_error(f"Building {name}"):
        initialize_all_variables()
    return model


def check_training_fits(model, batch_size, available=None):
    """Refuse (``ResourceError``) a batch size whose training step cannot fit in memory.

    The estimate is a lower bound: the layer outputs of one batch (kept for the backward pass) plus the
    weights and their gradients; the optimizer's slots and the framework's workspace come on top.
    """
    needed = batch_size * activation_bytes(model) + 2 * weight_bytes(model)
    _refuse_beyond(needed, f"Training {model.name} with --batch-size {batch_size:,}", available)


_OUT_OF_MEMORY = ("can't allocate memory", "out of memory", "resource_exhausted", "resource exhausted",
                  "failed to allocate", "cannot allocate memory")


def _is_out_of_memory(exc):
    if isinstance(exc, MemoryError):
        return True
    # torch.OutOfMemoryError, tf.errors.ResourceExhaustedError, jax's RESOURCE_EXHAUSTED, torch's CPU allocator
    text = f"{type(exc).__name__} {str(exc)[:500]}".lower()
    return "outofmemory" in text or "resourceexhausted" in text or any(s in text for s in _OUT_OF_MEMORY)


@contextlib.contextmanager
def out_of_memory_as_error(what):
    """Turn an allocation failure inside the block into a :class:`ResourceError` naming ``what``."""
    try:
        yield
    except Exception as exc:  # MemoryError, and the frameworks' own errors (RuntimeError subclasses and others)
        if not _is_out_of_memory(exc):
            raise
        raise ResourceError(f"{what} ran out of memory ({type(exc).__name__}: {first_line(exc, 'no message')[:200]}). "
                            f"Use a smaller --batch-size or input shape.") from None
