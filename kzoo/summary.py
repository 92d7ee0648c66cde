"""Model summaries: layer table, output shapes, parameter counts and FLOPs, the same on every backend.

FLOPs are reported as multiply-accumulates (MACs) per sample of the convolution, dense and recurrent layers,
the convention of torchvision's and timm's model tables. They are computed from layer configurations and
shapes alone, so they do not depend on the backend.
"""

import errno
import math
import os
import tempfile

from kzoo.errors import KzooError, ResourceError
from kzoo.memory import create_model_within_memory


def _shape(tensor_or_shape):
    shape = getattr(tensor_or_shape, "shape", tensor_or_shape)
    return tuple(None if d is None else int(d) for d in shape)


def _per_sample(shape):
    return math.prod(d for d in shape[1:] if d is not None)


def _rnn_macs(cell_layer, input_shape, output_units):
    gates = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}.get(type(cell_layer).__name__, 1)
    steps, features = input_shape[1], input_shape[-1]
    return steps * gates * (features * output_units + output_units * output_units)


def layer_macs(layer, input_shapes, output_shape):
    """Multiply-accumulates per sample of one call of ``layer``.

    A custom layer (e.g. a plugin's block layer) reports its own count by defining
    ``macs_per_sample(input_shape, output_shape)``; other unknown layers count as 0.
    """
    kind = type(layer).__name__
    in_shape = input_shapes[0] if input_shapes else None
    custom = getattr(layer, "macs_per_sample", None)
    if callable(custom):
        return int(custom(in_shape, output_shape))
    if kind in ("Conv1D", "Conv2D", "Conv3D"):
        kernel = math.prod(layer.kernel_size)
        groups = getattr(layer, "groups", 1) or 1
        return _per_sample(output_shape) * kernel * in_shape[-1] // groups
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D"):
        return _per_sample(output_shape) * math.prod(layer.kernel_size)
    if kind in ("SeparableConv2D", "SeparableConv1D"):
        depthwise = _per_sample(in_shape[:-1] + (in_shape[-1] * layer.depth_multiplier,)) * math.prod(layer.kernel_size)
        return depthwise + _per_sample(output_shape) * in_shape[-1] * layer.depth_multiplier
    if kind == "Dense":
        return _per_sample(output_shape) * in_shape[-1]
    if kind in ("SimpleRNN", "GRU", "LSTM"):
        return _rnn_macs(layer, in_shape, layer.units)
    if kind == "Bidirectional":
        return 2 * _rnn_macs(layer.forward_layer, in_shape, layer.forward_layer.units)
    if kind == "TimeDistributed":
        inner_in = (None, *in_shape[2:])
        inner_out = (None, *output_shape[2:])
        return in_shape[1] * layer_macs(layer.layer, [inner_in], inner_out)
    return 0


def _calls(layer):
    """``(input_shapes, output_shape)`` of every call of ``layer`` inside its functional model."""
    calls = []
    for node in getattr(layer, "_inbound_nodes", []):
        inputs = [_shape(t) for t in node.input_tensors]
        outputs = [_shape(t) for t in node.output_tensors]
        if outputs:
            calls.append((inputs, outputs[0] if len(outputs) == 1 else outputs))
    return calls


def _walk(model, prefix=""):
    """Rows of the layer table; a nested model (a shared encoder) contributes its MACs once per call."""
    rows = []
    for layer in model.layers:
        calls = _calls(layer)
        if not calls:
            continue
        out_shape = calls[0][1]
        if hasattr(layer, "layers") and hasattr(layer, "inputs"):  # nested functional model
            inner = _walk(layer, prefix=f"{prefix}{layer.name}/")
            macs = sum(r["macs"] for r in inner) * len(calls)
            rows.append({"name": prefix + layer.name, "type": type(layer).__name__,
                         "output_shape": out_shape, "params": layer.count_params(), "macs": macs,
                         "calls": len(calls)})
            continue
        macs = sum(layer_macs(layer, ins, out) for ins, out in calls if not isinstance(out, list))
        rows.append({"name": prefix + layer.name, "type": type(layer).__name__, "output_shape": out_shape,
                     "params": layer.count_params() if layer.built else 0, "macs": macs, "calls": len(calls)})
    return rows


def count_weights(weights):
    return int(sum(math.prod(w.shape) for w in weights))


def summarize(model):
    """Summary of a built ``keras.Model`` as a dict (layers, parameter counts, MACs per sample)."""
    import keras

    rows = _walk(model)
    trainable = count_weights(model.trainable_weights)
    non_trainable = count_weights(model.non_trainable_weights)
    return {
        "model": model.name,
        "backend": keras.backend.backend(),
        "input_shape": [list(_shape(t))[1:] for t in model.inputs],
        "output_shape": [list(_shape(t))[1:] for t in model.outputs],
        "layers": [{**row, "output_shape": row["output_shape"]} for row in rows],
        "total_params": trainable + non_trainable,
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "macs": int(sum(row["macs"] for row in rows)),
    }


def summary(name, *, input_shape=None, num_classes=None, **options):
    """Build a registered model and summarize it (``kzoo summary``).

    A model whose weights cannot fit in memory is refused with the estimate (:mod:`kzoo.memory`).
    """
    model = create_model_within_memory(name, input_shape=input_shape, num_classes=num_classes, **options)
    return summarize(model)


def _check_output(output, overwrite):
    """Refuse an output path that cannot take a ``.keras`` file, before anything is built."""
    if not output.endswith(".keras") or os.path.basename(output) == ".keras":
        raise KzooError(f"The output file must be a name ending in .keras. Received: output={output!r}.")
    if os.path.isdir(output):
        raise KzooError(f"{output} is a folder; give a file name ending in .keras. Received: output={output!r}.")
    if os.path.lexists(output) and not overwrite:
        raise KzooError(f"{output} already exists; pass --overwrite to replace it.")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise KzooError(f"Cannot write {output}: the folder {folder} does not exist.")
    if not os.access(folder, os.W_OK):
        raise KzooError(f"Cannot write {output}: the folder {folder} is not writable.")
    try:  # root passes os.access everywhere; /proc and read-only mounts still refuse a file
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise KzooError(f"Cannot write {output}: {exc.strerror or exc}.") from None


def build(name, output, *, input_shape=None, num_classes=None, overwrite=False, **options):
    """Build an untrained model and save it as a ``.keras`` file that loads on every backend (``kzoo build``)."""
    from kzoo.engine.checkpoints import atomic_save_model

    output = str(output)
    _check_output(output, overwrite)
    model = create_model_within_memory(name, input_shape=input_shape, num_classes=num_classes, **options)
    try:
        atomic_save_model(model, output, overwrite=overwrite)
    except OSError as exc:  # a folder that refuses files (/proc, read-only mounts), a full disk, ...
        error = ResourceError if exc.errno in (errno.ENOSPC, errno.EDQUOT) else KzooError
        raise error(f"Cannot write {output}: {exc.strerror or exc}.") from None
    return output
