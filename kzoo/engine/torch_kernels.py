"""Native PyTorch recurrent kernels for Keras LSTM and GRU layers on the torch backend, on every device.

Keras 3 (3.15) runs LSTM and GRU on the torch backend through ``torch._VF.lstm`` / ``torch._VF.gru`` only
when the inputs are on CUDA; on the CPU it steps through time in Python, about 20x slower than TensorFlow.
The fused ATen kernels behind ``torch._VF`` are not CUDA-only: they are the ones ``torch.nn.LSTM`` uses on
the CPU. :func:`install` routes every eligible call (standard activations, no mask, no unroll) to them on
any device, with the same weights and the same results (tests/engine/test_torch_kernels.py), and leaves
everything else to Keras. This is backend-specific speed work, so it lives in the engine, never in a model.
"""

import functools

_INSTALLED = False


def _standard_activations(activation, recurrent_activation):
    import torch
    from keras.src import activations, ops

    return (activation in (activations.tanh, torch.tanh, ops.tanh)
            and recurrent_activation in (activations.sigmoid, torch.sigmoid, ops.sigmoid))


def _prepare(inputs, kernel, recurrent_kernel, bias, states, go_backwards):
    import torch
    from keras.src.backend.torch.core import convert_to_tensor

    kernel = convert_to_tensor(kernel)
    recurrent_kernel = convert_to_tensor(recurrent_kernel)
    bias = convert_to_tensor(bias) if bias is not None else None
    dtype = kernel.dtype  # integer inputs are promoted; mixed precision keeps the kernel's compute dtype
    inputs = convert_to_tensor(inputs).to(dtype)
    states = [convert_to_tensor(s).to(dtype) for s in states]
    if go_backwards:
        inputs = torch.flip(inputs, dims=[1])
    return inputs, kernel, recurrent_kernel, bias, states


def _native_lstm(original, inputs, initial_state_h, initial_state_c, mask, kernel, recurrent_kernel, bias,
                 activation, recurrent_activation, return_sequences=False, go_backwards=False, unroll=False,
                 batch_first=True):
    keras_rnn = _keras_torch_rnn()

    if mask is not None or unroll or not batch_first or not _standard_activations(activation, recurrent_activation):
        return original(inputs, initial_state_h, initial_state_c, mask, kernel, recurrent_kernel, bias, activation,
                        recurrent_activation, return_sequences=return_sequences, go_backwards=go_backwards,
                        unroll=unroll, batch_first=batch_first)
    inputs, kernel, recurrent_kernel, bias, (h, c) = _prepare(
        inputs, kernel, recurrent_kernel, bias, [initial_state_h, initial_state_c], go_backwards)
    return keras_rnn._cudnn_lstm(inputs, h, c, kernel, recurrent_kernel, bias,
                                 return_sequences=return_sequences, device=inputs.device)


def _native_gru(original, inputs, initial_state, mask, kernel, recurrent_kernel, bias, activation,
                recurrent_activation, return_sequences=False, go_backwards=False, unroll=False, reset_after=True):
    keras_rnn = _keras_torch_rnn()

    if (mask is not None or unroll or not reset_after
            or not _standard_activations(activation, recurrent_activation)):
        return original(inputs, initial_state, mask, kernel, recurrent_kernel, bias, activation,
                        recurrent_activation, return_sequences=return_sequences, go_backwards=go_backwards,
                        unroll=unroll, reset_after=reset_after)
    inputs, kernel, recurrent_kernel, bias, (state,) = _prepare(
        inputs, kernel, recurrent_kernel, bias, [initial_state], go_backwards)
    return keras_rnn._cudnn_gru(inputs, state, kernel, recurrent_kernel, bias,
                                return_sequences=return_sequences, device=inputs.device)


def _keras_torch_rnn():
    # the package re-exports a function named ``rnn`` that shadows the submodule as an attribute
    import importlib

    return importlib.import_module("keras.src.backend.torch.rnn")


def install():
    """Route Keras LSTM/GRU calls on the torch backend to torch's fused kernels (idempotent; no-op elsewhere)."""
    global _INSTALLED
    import keras

    if _INSTALLED or keras.backend.backend() != "torch":
        return False
    from keras.src import backend as keras_backend
    keras_rnn = _keras_torch_rnn()

    if not (hasattr(keras_rnn, "_cudnn_lstm") and hasattr(keras_rnn, "_cudnn_gru")):
        return False  # another Keras version: keep its own code paths
    keras_backend.lstm = functools.partial(_native_lstm, keras_rnn.lstm)
    keras_backend.gru = functools.partial(_native_gru, keras_rnn.gru)
    _INSTALLED = True
    return True


def uninstall():
    """Restore Keras's own LSTM/GRU dispatch (used by tests to compare both paths)."""
    global _INSTALLED
    if not _INSTALLED:
        return
    from keras.src import backend as keras_backend
    keras_rnn = _keras_torch_rnn()

    keras_backend.lstm = keras_rnn.lstm
    keras_backend.gru = keras_rnn.gru
    _INSTALLED = False
