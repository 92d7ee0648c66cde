"""The torch engine's graph compiler: a Keras functional model as a list of native torch calls.

``keras.Model.fit`` on the torch backend is slower than a hand-written PyTorch loop partly because of the layers:
some Keras-on-torch implementations are chains of small ops where torch has one fused kernel
(``BatchNormalization``: moments + elementwise ops instead of ``torch.batch_norm``; the recurrent layers: a Python
loop over time steps instead of ``torch.lstm``/``torch.gru``), and ``Layer.__call__`` (dtype policy, masking,
name scopes) costs something on every layer of every step (measured in ``docs/benchmarks.md``).

``compile_graph`` walks a Keras functional model once and turns every node into a plain torch call on the
layer's own variables (``variable.value`` is the ``torch.nn.Parameter`` the Keras optimizer updates). The
architecture is never written twice: the graph, the layer hyper-parameters and the weights all come from the
Keras model, and any layer without a native kernel here runs as the Keras layer itself. Tensors keep Keras'
logical channels-last layout between layers; convolutions and pooling see a ``permute`` view of it, which is
torch's ``channels_last`` memory format, so no layout copy is made.

The optimizer step is :mod:`kzoo.engine.torch_optim`, the batches :mod:`kzoo.engine.torch_feed` and the loop
:mod:`kzoo.engine.torch_loop`.
"""

import weakref

import keras
import torch
import torch.nn.functional as F
from keras import layers as L

from kzoo.engine._keras_compat import losses_added_by

# -- layers ---------------------------------------------------------------------------------------------

_LINEAR = (keras.activations.linear,)


def _activation_fn(activation):
    """A torch function for a Keras activation (or the Keras function itself, which runs on torch too)."""
    table = {keras.activations.relu: torch.relu, keras.activations.tanh: torch.tanh,
             keras.activations.sigmoid: torch.sigmoid}
    if activation in _LINEAR or activation is None:
        return None
    return table.get(activation, activation)


def _with_activation(fn, activation):
    act = _activation_fn(activation)
    if act is None:
        return fn
    return lambda x, training: act(fn(x, training))


def _to_cf(x):  # (N, H, W, C) -> an (N, C, H, W) view in torch's channels_last memory format
    return x.permute(0, 3, 1, 2)


def _to_cl(x):
    return x.permute(0, 2, 3, 1)


# spatial size (H*W) up to which a convolution input is made plain NCHW, per device type
_SMALL_MAPS = {"cpu": 64}


def restride(variable, extra=()):
    """Store a conv kernel (HWIO shape) in OIHW memory order, in place: the same Parameter, shape and values.

    (A recurrent kernel, shape ``(in, gates)``, likewise goes to torch's ``(gates, in)`` memory order.)

    ``kernel.permute(3, 2, 0, 1)`` then is a contiguous OIHW tensor, so torch's convolution neither copies the
    weight in the forward pass nor its gradient in the backward pass. Keras ops, checkpoints and optimizers
    see the same (strided) tensor; ``extra`` (optimizer slots of the kernel) get the same memory order, so
    fused optimizer kernels walk all of them in the same element order.
    """
    for v in (variable, *extra):
        value = v.value
        if value.dim() == 4 and not value.permute(3, 2, 0, 1).is_contiguous():
            value.data = value.data.permute(3, 2, 0, 1).contiguous().permute(2, 3, 1, 0)
        elif value.dim() == 2 and not value.t().is_contiguous():  # recurrent (in, gates) -> torch's (gates, in)
            value.data = value.data.t().contiguous().t()


def _conv2d(layer):
    if type(layer) is not L.Conv2D or layer.data_format != "channels_last":
        return None
    stride, dilation = tuple(layer.strides), tuple(layer.dilation_rate)
    if layer.padding == "valid":
        padding = 0
    elif layer.padding == "same" and (stride == (1, 1) or tuple(layer.kernel_size) == (1, 1)):
        padding = "same" if stride == (1, 1) else 0  # a 1x1 kernel needs no padding at any stride
    else:
        return None  # Keras' "same" with strides pads bottom/right only: let the layer do it
    groups, kernel, bias = layer.groups, layer.kernel, layer.bias
    small = _SMALL_MAPS.get(str(kernel.value.device.type), 0)

    def conv(x, training):
        # HWIO -> OIHW view (a contiguous one once ``restride`` ran); the input keeps its memory format
        # (channels_last for large maps, where oneDNN and cuDNN are fastest in NHWC), except that small maps
        # go to plain NCHW, where the CPU kernels are faster (ResNet's 4x4x512 stage: ~1.8x)
        xc = _to_cf(x)
        if x.shape[1] * x.shape[2] <= small:
            xc = xc.contiguous()
        y = F.conv2d(xc, kernel.value.permute(3, 2, 0, 1), None if bias is None else bias.value, stride, padding,
                     dilation, groups)
        return _to_cl(y)

    return _with_activation(conv, layer.activation)


def _dense(layer):
    if type(layer) is not L.Dense or layer.lora_enabled or getattr(layer, "quantization_mode", None):
        return None
    kernel, bias = layer.kernel, layer.bias

    def dense(x, training):
        if x.dim() == 2 and bias is not None:
            return torch.addmm(bias.value, x, kernel.value)
        y = torch.matmul(x, kernel.value)
        return y if bias is None else y + bias.value

    return _with_activation(dense, layer.activation)


def _pool2d(layer):
    kind = {L.MaxPooling2D: "max", L.AveragePooling2D: "avg"}.get(type(layer))
    if kind is None or layer.data_format != "channels_last" or layer.padding != "valid":
        return None
    size, strides = tuple(layer.pool_size), tuple(layer.strides)
    op = F.max_pool2d if kind == "max" else F.avg_pool2d
    return lambda x, training: _to_cl(op(_to_cf(x), size, strides))


def _batch_norm(layer):
    """``torch.batch_norm`` on the layer's own gamma, beta and moving statistics, updated as Keras does.

    Keras' momentum m is torch's 1 - m. torch updates the moving variance with the unbiased batch variance
    s2 = v n/(n-1) (n = batch x height x width samples per channel); Keras with the biased one v. From torch's
    r' = (1-a) r + a s2 (a = 1 - m) and the old r, Keras's (1-a) r + a v is r' - (r' - (1-a) r) / n: a few
    per-channel operations on C values, no second pass over the activations. A batch of n = 1, which torch
    refuses in training, is normalised as Keras does it (variance 0).
    """
    if type(layer) is not L.BatchNormalization or getattr(layer, "synchronized", False) or layer.renorm:
        return None
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    try:
        rank = len(layer.input.shape)
    except (AttributeError, ValueError):  # a layer called more than once
        rank = None
    if len(axes) != 1 or rank is None or axes[0] not in (-1, rank - 1):
        return None
    gamma, beta = layer.gamma, layer.beta
    mean, var = layer.moving_mean, layer.moving_variance
    momentum, eps = 1.0 - layer.momentum, layer.epsilon

    def bn(x, training):
        train = bool(training) and layer.trainable
        cf = x.permute(0, x.dim() - 1, *range(1, x.dim() - 1)) if x.dim() > 2 else x
        scale, shift = None if gamma is None else gamma.value, None if beta is None else beta.value
        n = x.numel() // x.shape[-1] if x.numel() else 0
        if train and n == 1:  # Keras's own formula
            batch_var, batch_mean = torch.var_mean(cf, dim=[d for d in range(cf.dim()) if d != 1], correction=0)
            with torch.no_grad():
                mean.value.lerp_(batch_mean, momentum)
                var.value.lerp_(batch_var, momentum)
            shape = (1, -1) + (1,) * (cf.dim() - 2)
            y = (cf - batch_mean.view(shape)) * torch.rsqrt(batch_var.view(shape) + eps)
            y = y if scale is None else y * scale.view(shape)
            y = y if shift is None else y + shift.view(shape)
        else:
            # in training torch updates a copy (autograd keeps the tensor it was given), which then corrects
            # the layer's own variable from torch's unbiased update to Keras's biased one (see the docstring)
            running_var = var.value.clone() if train else var.value
            y = F.batch_norm(cf, mean.value, running_var, scale, shift, train, momentum, eps)
            if train:
                with torch.no_grad():
                    var.value.copy_(running_var - (running_var - var.value * (1.0 - momentum)) / n)
        return y.permute(0, *range(2, x.dim()), 1) if x.dim() > 2 else y

    return bn


def _activation_layer(layer):
    if type(layer) is L.Activation:
        act = _activation_fn(layer.activation)
        return (lambda x, training: x) if act is None else (lambda x, training: act(x))
    if type(layer) is L.ReLU and layer.max_value is None and not layer.negative_slope and not layer.threshold:
        return lambda x, training: torch.relu(x)
    return None


def _dropout(layer):
    if type(layer) is not L.Dropout or layer.noise_shape is not None:
        return None
    rate = float(layer.rate)
    return lambda x, training: F.dropout(x, rate, bool(training)) if rate else x


def _reshape_like(layer):
    if type(layer) is L.Flatten:
        return lambda x, training: x.reshape(x.shape[0], -1)
    if type(layer) is L.Reshape:
        target = tuple(layer.target_shape)
        return lambda x, training: x.reshape((x.shape[0],) + target)
    return None


def _global_pool(layer):
    kind = {L.GlobalAveragePooling2D: "avg", L.GlobalMaxPooling2D: "max"}.get(type(layer))
    if kind is None or layer.data_format != "channels_last":
        return None
    keep = bool(layer.keepdims)
    if kind == "avg":
        return lambda x, training: x.mean(dim=(1, 2), keepdim=keep)
    return lambda x, training: x.amax(dim=(1, 2), keepdim=keep)


def _zero_padding(layer):
    if type(layer) is not L.ZeroPadding2D or layer.data_format != "channels_last":
        return None
    (top, bottom), (left, right) = layer.padding
    pad = (left, right, top, bottom)
    return lambda x, training: _to_cl(F.pad(_to_cf(x), pad))  # keeps the input's memory format


def _recurrent(layer):
    """LSTM / GRU / SimpleRNN through torch's fused recurrent kernels (cuDNN on a GPU), same weights.

    Keras and torch share the LSTM gate order (i, f, c, o); a GRU with ``reset_after=True`` is torch's GRU with
    the gates reordered from Keras' (z, r, h) to torch's (r, z, n).
    """
    kind = {L.LSTM: "lstm", L.GRU: "gru", L.SimpleRNN: "rnn"}.get(type(layer))
    if kind is None:
        return None
    cell = layer.cell
    default_recurrent = kind == "rnn" or cell.recurrent_activation is keras.activations.sigmoid
    if (cell.activation is not keras.activations.tanh or not default_recurrent or not cell.use_bias
            or cell.dropout or cell.recurrent_dropout or layer.go_backwards or layer.stateful
            or layer.return_state or layer.unroll or (kind == "gru" and not cell.reset_after)):
        return None
    units, return_sequences = cell.units, layer.return_sequences
    kernel, recurrent, bias = cell.kernel, cell.recurrent_kernel, cell.bias

    def weights():
        # contiguous (out, in) matrices, as torch's own modules keep them: the kernels run faster on them
        # (no copy once ``restride`` stored the Keras kernels in that memory order)
        w_ih, w_hh, b = kernel.value.t().contiguous(), recurrent.value.t().contiguous(), bias.value
        if kind in ("lstm", "rnn"):
            return [w_ih, w_hh, b, torch.zeros_like(b)]
        order = lambda t: torch.cat([t[units:2 * units], t[:units], t[2 * units:]])  # noqa: E731 (z,r,h)->(r,z,n)
        return [order(w_ih), order(w_hh), order(b[0]), order(b[1])]

    def run(x, training):
        h0 = x.new_zeros(1, x.shape[0], units)
        if kind == "lstm":
            out, _, _ = torch.lstm(x, (h0, h0), weights(), True, 1, 0.0, bool(training), False, True)
        elif kind == "gru":
            out, _ = torch.gru(x, h0, weights(), True, 1, 0.0, bool(training), False, True)
        else:
            out, _ = torch.rnn_tanh(x, h0, weights(), True, 1, 0.0, bool(training), False, True)
        return out if return_sequences else out[:, -1]

    return run


def _add(layer):
    if type(layer) is not L.Add:
        return None

    def add(xs, training):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y

    return add


def _concatenate(layer):
    if type(layer) is not L.Concatenate:
        return None
    axis = layer.axis
    return lambda xs, training: torch.cat(xs, dim=axis)


_SINGLE = (_conv2d, _dense, _pool2d, _batch_norm, _activation_layer, _dropout, _reshape_like, _global_pool,
           _zero_padding, _recurrent)
_MULTI = (_add, _concatenate)


def _native(layer, multi):
    if getattr(layer, "activity_regularizer", None) is not None:
        return None  # Keras adds its loss in ``Layer.__call__``: the layer runs as itself (``_keras_call``)
    for factory in _MULTI if multi else _SINGLE:
        fn = factory(layer)
        if fn is not None:
            return fn
    return None


def native_layer(layer):
    """The native torch function ``fn(x, training)`` of a single-input layer, or ``None`` where it has none."""
    return _native(layer, multi=False)


def _keras_call(op):
    """Any other layer (or a nested model) runs as itself, with the training flag it expects.

    The call returns the layer's output and the losses the call added (``add_loss``, activity regularizers):
    each call of a layer outside a model is an outermost Keras call, which first clears the losses of the
    layer and its sublayers, so what they hold afterwards is what this call added.
    """
    if isinstance(op, keras.Model) and getattr(op, "_nodes_by_depth", None) is not None:
        inner = CompiledGraph(op, skip_head=False)  # its softmax is the output the outer graph goes on with

        def call_model(args, kwargs, training):
            output, _, losses = inner.forward(args[0], training)
            return output, losses

        return call_model
    takes_training = getattr(op, "_call_has_training_arg", False)
    own_layers = op._flatten_layers(include_self=True) if isinstance(op, keras.Layer) else []

    def call(args, kwargs, training):
        if takes_training:
            kwargs = dict(kwargs, training=training)
        output = op(*args, **kwargs)
        return output, [loss for layer in own_layers for loss in losses_added_by(layer)]

    return call


# how a step of a compiled graph runs: a native torch function of its input tensor(s), or the Keras layer itself
NATIVE, AS_KERAS = "native", "keras"


class CompiledGraph:
    """A functional Keras model as a list of torch calls; ``forward`` returns ``(output, logits, losses)``.

    ``logits`` is the input of a final float32 ``Activation("softmax")`` (kzoo's classifier head), which the
    training step skips: cross-entropy and accuracy come from the logits, as in a native loop. ``losses``
    are the ones the layers added during this forward pass (``add_loss``, activity regularizers), which Keras
    adds to the compiled loss in training and evaluation alike; layers with an activity regularizer run as
    Keras layers, so Keras itself computes them.
    """

    def __init__(self, model, skip_head=True):
        KerasTensor = keras.KerasTensor

        self.model = model
        self.input_id = id(model.inputs[0])
        output = model.outputs[0]
        self.output_id = id(output)
        self.native, self.fallback, self.conv_kernels = [], [], []
        self.steps, self.ops = [], []  # ops[i]: the layer step i computes (kzoo.engine.torch_inference fuses some)
        self.logits_id = None
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if not node.operation or node.is_input:
                    continue
                op = node.operation
                arguments = node.arguments
                outs = [id(t) for t in node.outputs]
                # the training/mask values recorded at model construction are replaced at run time
                extra = {k: v for k, v in arguments.kwargs.items() if not (k == "training" or (k == "mask" and v is None))}
                single = arguments.args[0] if (not extra and len(arguments.args) == 1
                                               and isinstance(arguments.args[0], KerasTensor)) else None
                multi = (not extra and len(arguments.args) == 1 and isinstance(arguments.args[0], list)
                         and all(isinstance(t, KerasTensor) for t in arguments.args[0]))
                fn = _native(op, multi=False) if single is not None else (_native(op, multi=True) if multi else None)
                if fn is not None:
                    if type(op) is L.Conv2D:
                        self.conv_kernels.append(op.kernel)
                    elif type(op) in (L.LSTM, L.GRU, L.SimpleRNN):
                        self.conv_kernels += [op.cell.kernel, op.cell.recurrent_kernel]
                    ins = id(single) if single is not None else [id(t) for t in arguments.args[0]]
                    self.steps.append((NATIVE, fn, ins, outs))
                    self.ops.append(op)
                    self.native.append(op.name)
                else:
                    self.steps.append((AS_KERAS, _keras_call(op), arguments, outs))
                    self.ops.append(op)
                    self.fallback.append(f"{op.name} ({type(op).__name__})")
                if skip_head and outs == [self.output_id] and single is not None and type(op) is L.Activation \
                        and op.activation is keras.activations.softmax and op.dtype_policy.compute_dtype == "float32":
                    self.logits_id = id(single)

    def forward(self, x, training):
        values, losses = self.run(self.steps, x, training)
        return values.get(self.output_id), values.get(self.logits_id) if self.logits_id else None, losses

    def run(self, steps, x, training):
        """Every value ``steps`` compute from input ``x`` (by id) and the losses the layers added.

        ``steps`` are this graph's own or a rewrite of them (:class:`kzoo.engine.torch_inference.InferencePlan`).
        """
        values = {self.input_id: x}
        losses = []
        for kind, fn, ins, outs in steps:
            if kind is NATIVE:
                if training and self.logits_id is not None and outs == [self.output_id]:
                    continue  # the training step needs only the logits
                y = fn(values[ins] if isinstance(ins, int) else [values[i] for i in ins], training)
            else:
                args, kwargs = ins.fill_in(values)
                y, added = fn(args, kwargs, training)
                losses += added
            if len(outs) == 1:
                values[outs[0]] = y
            else:
                for key, value in zip(outs, y):
                    values[key] = value
        return values, losses


# Keras layers that may run as themselves inside a captured step (kzoo.engine.torch_cuda_graph): functions of
# their input and weights only, with no random state or host-side counters a replay would not advance (a capture
# that still fails, e.g. on a host sync, falls back to eager steps with its reason)
_CAPTURABLE_KERAS = (L.Resizing, L.Rescaling, L.CenterCrop, L.Cropping2D, L.Permute, L.Conv1D, L.Conv2D,
                     L.DepthwiseConv2D, L.SeparableConv2D, L.LayerNormalization, L.Multiply, L.Subtract,
                     L.Average, L.Maximum, L.Minimum, L.Softmax, L.Activation, L.ReLU, L.LeakyReLU,
                     L.GlobalAveragePooling1D, L.GlobalMaxPooling1D, L.MaxPooling1D, L.AveragePooling1D,
                     L.UpSampling2D, L.Identity)


def capturable_fallbacks(graph):
    """``(name, capturable)`` for each step of ``graph`` that runs as a Keras layer or nested model."""
    result = []
    for (kind, _, _, _), op in zip(graph.steps, graph.ops):
        if kind is NATIVE:
            continue
        if isinstance(op, keras.Model) and getattr(op, "_nodes_by_depth", None) is not None:
            inner = capturable_fallbacks(CompiledGraph(op, skip_head=False))
            result.append((op.name, all(ok for _, ok in inner)))
        else:
            ok = type(op) in _CAPTURABLE_KERAS and getattr(op, "activity_regularizer", None) is None
            result.append((f"{op.name} ({type(op).__name__})", ok))
    return result


_COMPILED = weakref.WeakKeyDictionary()


def compile_graph(model):
    """The compiled form of ``model``, built once per model (it reads variables at call time, not now)."""
    compiled = _COMPILED.get(model)
    if compiled is None:
        compiled = _COMPILED[model] = CompiledGraph(model)
    return compiled
