"""Native PyTorch recurrent kernels for the LSTM and GRU layers of the models kzoo trains, on every device.

Keras 3 (3.15) runs LSTM and GRU on the torch backend through torch's fused kernels (``_cudnn_lstm`` /
``_cudnn_gru`` in Keras's torch RNN module) only when the inputs are on CUDA; on the CPU it steps through time
in Python, about 20x slower than TensorFlow. The fused ATen kernels are not CUDA-only: they are the ones
``torch.nn.LSTM`` uses on the CPU. :func:`accelerate_layer` gives one layer instance an ``inner_loop`` of its own
that takes them on any device for every eligible call (standard activations, a bias, no unroll, no dropout
inside the layer while training, not under a trace) and hands everything else to the layer's class: the same
weights and the same results (tests/engine/test_torch_kernels.py).

Masks: Keras's torch backend steps through time in Python whenever a layer gets a mask (an ``Embedding`` with
``mask_zero=True``), on every device. A right-padded mask (every sequence's real steps first, at least one) is
the sequence lengths, and torch's fused kernels take those as a packed sequence: :func:`_masked_fused` runs
them and rebuilds what Keras's masked loop returns (the final state at each sequence's last real step; at
padded steps the last real output carried on, or zeros with ``zero_output_for_mask``). Any other mask (left
padding, holes, an empty sequence, ``go_backwards``) keeps Keras's loop. Only the layers of models the
engine trains or loads get it (:mod:`kzoo.engine.kernels`); Keras itself and other models are left alone.
"""

import types

from kzoo.engine import _keras_compat


def _standard_activations(cell):
    import keras
    import torch

    return (cell.activation in (keras.activations.tanh, torch.tanh, keras.ops.tanh)
            and cell.recurrent_activation in (keras.activations.sigmoid, torch.sigmoid, keras.ops.sigmoid))


def _eligible(layer, mask, training):
    import keras
    import torch

    cell = layer.cell
    return ((mask is None or not layer.go_backwards) and layer.use_cudnn in ("auto", True) and not layer.unroll and cell.use_bias
            and not cell.recurrent_dropout and not (training and cell.dropout) and _standard_activations(cell)
            and (isinstance(layer, keras.layers.LSTM) or cell.reset_after)
            and not torch.jit.is_tracing() and not torch.compiler.is_compiling())


def _prepare(layer, inputs, states):
    import keras
    import torch

    cell = layer.cell
    kernel = keras.ops.convert_to_tensor(cell.kernel)
    dtype = kernel.dtype  # integer inputs are promoted; mixed precision keeps the kernel's compute dtype
    inputs = keras.ops.convert_to_tensor(inputs).to(dtype)
    if layer.go_backwards:
        inputs = torch.flip(inputs, dims=[1])
    states = [keras.ops.convert_to_tensor(s).to(dtype) for s in states]
    recurrent, bias = keras.ops.convert_to_tensor(cell.recurrent_kernel), keras.ops.convert_to_tensor(cell.bias)
    return inputs, kernel, recurrent, bias, states


def _fused_inner_loop(layer, sequences, initial_state, mask, training=False):
    """``LSTM.inner_loop`` / ``GRU.inner_loop`` through torch's fused kernel (returns what Keras's returns)."""
    import keras

    lstm = isinstance(layer, keras.layers.LSTM)
    flat_mask = mask[0] if isinstance(mask, (list, tuple)) else mask
    if not _eligible(layer, flat_mask, training):
        return type(layer).inner_loop(layer, sequences, initial_state, mask, training=training)
    keras_rnn = _keras_compat.torch_rnn_module()
    if flat_mask is not None:
        lengths = _right_padded_lengths(flat_mask)
        if lengths is None:
            return type(layer).inner_loop(layer, sequences, initial_state, mask, training=training)
        return _masked_fused(layer, sequences, initial_state, lengths, lstm)
    if lstm:
        inputs, kernel, recurrent, bias, (h, c) = _prepare(layer, sequences, initial_state[:2])
        return keras_rnn._cudnn_lstm(inputs, h, c, kernel, recurrent, bias,
                                     return_sequences=layer.return_sequences, device=inputs.device)
    state = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
    inputs, kernel, recurrent, bias, (state,) = _prepare(layer, sequences, [state])
    return keras_rnn._cudnn_gru(inputs, state, kernel, recurrent, bias,
                                return_sequences=layer.return_sequences, device=inputs.device)


def _right_padded_lengths(mask):
    """The sequence lengths of a right-padded ``(batch, steps)`` mask with no empty sequence, else ``None``."""
    import torch

    mask = mask.bool()
    lengths = mask.sum(dim=1)
    steps = torch.arange(mask.shape[1], device=mask.device)
    if bool((lengths == 0).any()) or not bool((mask == (steps < lengths[:, None])).all()):
        return None
    return lengths


def _masked_fused(layer, sequences, initial_state, lengths, lstm):
    """Keras's masked ``inner_loop`` result through the fused kernel on a packed sequence (right padding)."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    keras_rnn = _keras_compat.torch_rnn_module()
    states = list(initial_state[:2]) if lstm else [
        initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state]
    inputs, kernel, recurrent, bias, states = _prepare(layer, sequences, states)
    prepare_params = keras_rnn.prepare_lstm_params if lstm else keras_rnn.prepare_gru_params
    params = prepare_params(kernel, recurrent, bias, inputs.device)
    packed = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
    order, restore = packed.sorted_indices, packed.unsorted_indices
    hidden = [s.unsqueeze(0).index_select(1, order) for s in states]
    kernel_fn = torch._VF.lstm if lstm else torch._VF.gru
    result = kernel_fn(packed.data, packed.batch_sizes, tuple(hidden) if lstm else hidden[0], params, True, 1, 0.0,
                       torch.is_grad_enabled(), False)
    final = [h.index_select(1, restore).squeeze(0) for h in result[1:]]
    outputs, _ = pad_packed_sequence(packed._replace(data=result[0]), batch_first=True,
                                     total_length=inputs.shape[1])
    if not layer.zero_output_for_mask:  # a padded step repeats the last real output, as Keras's loop does
        steps = torch.arange(inputs.shape[1], device=inputs.device)
        last = torch.minimum(steps[None, :], (lengths - 1)[:, None]).to(inputs.device)
        outputs = outputs.gather(1, last[:, :, None].expand(-1, -1, outputs.shape[2]))
    last_output = outputs[:, -1]
    if not layer.return_sequences:
        outputs = last_output.unsqueeze(1)
    return last_output, outputs, final


def usable():
    """Whether this Keras has the fused-kernel functions (another version keeps its own code paths)."""
    keras_rnn = _keras_compat.torch_rnn_module()
    return hasattr(keras_rnn, "_cudnn_lstm") and hasattr(keras_rnn, "_cudnn_gru")


def accelerate_layer(layer):
    """Give an LSTM or GRU layer instance the fused kernels; returns whether it is newly accelerated."""
    import keras

    if type(layer) not in (keras.layers.LSTM, keras.layers.GRU) or is_accelerated(layer):
        return False
    layer.inner_loop = types.MethodType(_fused_inner_loop, layer)
    return True


def is_accelerated(layer):
    inner_loop = layer.__dict__.get("inner_loop")
    return getattr(inner_loop, "__func__", None) is _fused_inner_loop
