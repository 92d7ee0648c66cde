"""The torch backend's fast training path: the same Keras model, the same weights, native torch kernels.

Two costs make ``keras.Model.fit`` on the torch backend slower than a hand-written PyTorch loop (measured in
``docs/benchmarks.md``):

* layers whose Keras-on-torch implementation is a chain of small ops where torch has one fused kernel:
  ``BatchNormalization`` (moments + several elementwise ops instead of ``torch.batch_norm``), the recurrent
  layers (a Python loop over time steps on CPU instead of ``torch.lstm``/``torch.gru``), plus the per-call
  overhead of ``Layer.__call__`` (dtype policy, masking, name scopes) on every layer of every step;
* the loop around the step: data adapters that convert NumPy batches, metric objects, per-batch host syncs.

``compile_graph`` walks a Keras functional model once and turns every node into a plain torch call on the
layer's own variables (``variable.value`` is the ``torch.nn.Parameter`` the Keras optimizer updates). The
architecture is never written twice: the graph, the layer hyper-parameters and the weights all come from the
Keras model, and any layer without a native kernel here runs as the Keras layer itself. Tensors keep Keras'
logical channels-last layout between layers; convolutions and pooling see a ``permute`` view of it, which is
torch's ``channels_last`` memory format, so no layout copy is made.

``TorchLoop`` (registered in ``kzoo.engine.loops``) trains with it: data as torch tensors, a seeded
``torch.randperm`` shuffle, the objective ``fit`` computes (cross-entropy from the logits of the final float32
softmax, plus, in training and validation alike, the losses layers add and the weight regularizers), the model's own
compiled Keras optimizer (so learning-rate schedules, clipnorm, weight decay, ``optimizer.iterations`` and
resumable checkpoints behave exactly as with ``fit``), loss and accuracy accumulated on the device, and the
Keras callbacks (checkpoints, CSV log, early stopping, NaN guard, progress bar) called as ``fit`` calls them.
"""

import math
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


def _keras_call(op):
    """Any other layer (or a nested model) runs as itself, with the training flag it expects.

    The call returns the layer's output and the losses the call added (``add_loss``, activity regularizers):
    each call of a layer outside a model is an outermost Keras call, which first clears the losses of the
    layer and its sublayers, so what they hold afterwards is what this call added.
    """
    if isinstance(op, keras.Model) and getattr(op, "_nodes_by_depth", None) is not None:
        inner = Compiled(op, skip_head=False)  # its softmax is the output the outer graph goes on with

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


class Compiled:
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
        self.steps = []
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
                    self.steps.append((0, fn, ins, outs))
                    self.native.append(op.name)
                else:
                    self.steps.append((1, _keras_call(op), arguments, outs))
                    self.fallback.append(f"{op.name} ({type(op).__name__})")
                if skip_head and outs == [self.output_id] and single is not None and type(op) is L.Activation \
                        and op.activation is keras.activations.softmax and op.dtype_policy.compute_dtype == "float32":
                    self.logits_id = id(single)

    def forward(self, x, training):
        values = {self.input_id: x}
        losses = []
        for kind, fn, ins, outs in self.steps:
            if kind == 0:
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
        return values.get(self.output_id), values.get(self.logits_id) if self.logits_id else None, losses


_COMPILED = weakref.WeakKeyDictionary()


def compile_graph(model):
    """The compiled form of ``model``, built once per model (it reads variables at call time, not now)."""
    compiled = _COMPILED.get(model)
    if compiled is None:
        compiled = _COMPILED[model] = Compiled(model)
    return compiled


# -- the optimizer step -----------------------------------------------------------------------------------


def _same_order(a, b):
    """Whether two tensors of one shape lay their elements out in the same memory order."""
    return all(sa == sb for sa, sb, n in zip(a.stride(), b.stride(), b.shape) if n > 1)


def _memory_order(t):
    """``t`` itself when contiguous, else a flat view of its elements in memory order (``t`` must be dense).

    torch's fused Adam makes every non-contiguous tensor contiguous on the CPU (a strided copy: 5 ms for one
    512x512x3x3 kernel stored OIHW under its HWIO shape vs 0.7 ms for the whole update); an elementwise
    update does not care about the order, only that parameter, gradient and moments share it.
    """
    if t.is_contiguous():
        return t
    return t.as_strided((t.numel(),), (1,), t.storage_offset())


class FusedAdam:
    """Keras' Adam update in torch's fused kernel (one pass over memory instead of Keras' eight ``_foreach``).

    It updates the Keras optimizer's own moment variables and ``iterations``, so checkpoints and resume are
    unchanged. Keras puts epsilon outside the bias correction (``m / (sqrt(v) + eps)`` scaled by
    ``sqrt(1 - b2^t) / (1 - b1^t)``); torch inside (``sqrt(v) / sqrt(1 - b2^t) + eps``); passing torch
    ``eps / sqrt(1 - b2^t)`` makes the two the same update.
    """

    @staticmethod
    def usable(optimizer):
        from kzoo.engine._keras_compat import torch_adam_class

        return (type(optimizer) is torch_adam_class() and not optimizer.amsgrad and not optimizer.weight_decay
                and optimizer.clipnorm is None and optimizer.clipvalue is None and optimizer.global_clipnorm is None
                and not optimizer.use_ema and not optimizer.gradient_accumulation_steps
                and optimizer.loss_scale_factor is None and hasattr(torch, "_fused_adam_"))

    def __init__(self, optimizer, variables):
        if not optimizer.built:
            optimizer.build(variables)
        self.optimizer = optimizer
        index = optimizer._get_variable_index
        self.variables = variables
        self.params = [v.value for v in variables]
        self.m = [optimizer._momentums[index(v)].value for v in variables]
        self.v = [optimizer._velocities[index(v)].value for v in variables]
        self.t = int(optimizer.iterations.numpy())
        device = self.m[0].device
        self.step = torch.zeros((), dtype=torch.float32, device=device)
        self.host_lr = device.type == "cpu"
        self._flat = None  # flat memory-order views, made at the first step (after ``restride``)

    def slots(self, variable):
        index = self.optimizer._get_variable_index(variable)
        return self.optimizer._momentums[index], self.optimizer._velocities[index]

    def apply(self, grads):
        opt = self.optimizer
        self.t += 1
        lr = opt._get_current_learning_rate()
        if self.host_lr:
            lr = float(lr)
        else:  # on an accelerator: a device tensor (the kernel's tensor_lr overload), no host sync
            lr = lr.value if hasattr(lr, "value") else torch.as_tensor(lr, device=self.step.device)
            lr = lr.to(torch.float32)
        self.step.fill_(self.t)
        eps = opt.epsilon / math.sqrt(1.0 - opt.beta_2 ** self.t)
        if self._flat is None:
            self._flat = [[_memory_order(t) for t in group] for group in (self.params, self.m, self.v)]
        params, m, v = self._flat
        # the fused kernel walks memory in order: each gradient must share its parameter's memory order
        # (autograd gives it that; a gradient from elsewhere may not), then goes in as the same flat view
        grads = [_memory_order(g if _same_order(g, p) else torch.empty_like(p).copy_(g))
                 for g, p in zip(grads, self.params)]
        torch._fused_adam_(params, grads, m, v, [],
                           [self.step] * len(grads), lr=lr, beta1=opt.beta_1, beta2=opt.beta_2, weight_decay=0.0,
                           eps=eps, amsgrad=False, maximize=False)
        opt.iterations.assign_add(1)


class KerasApply:
    """Any other optimizer: the compiled Keras optimizer's own ``apply``."""

    def __init__(self, optimizer, variables):
        self.optimizer, self.variables = optimizer, variables

    def apply(self, grads):
        self.optimizer.apply(grads, self.variables)


def optimizer_step(optimizer, variables):
    if any(v.constraint is not None for v in variables) or not FusedAdam.usable(optimizer):
        return KerasApply(optimizer, variables)
    return FusedAdam(optimizer, variables)


# -- the loop ---------------------------------------------------------------------------------------------

_LOSSES = {
    "SparseCategoricalCrossentropy": "sparse_cce", "CategoricalCrossentropy": "cce",
    "MeanSquaredError": "mse", "MeanAbsoluteError": "mae", "BinaryCrossentropy": "bce",
}


_LOSS_NAMES = {
    "sparse_categorical_crossentropy": "sparse_cce", "categorical_crossentropy": "cce", "mse": "mse",
    "mean_squared_error": "mse", "mae": "mae", "mean_absolute_error": "mae", "binary_crossentropy": "bce",
}


def _loss_kind(loss):
    """``(kind, callable(y_true, y_pred) -> mean loss)`` for the compiled loss, or ``(None, None)``."""
    if isinstance(loss, str):
        kind = _LOSS_NAMES.get(loss)
        fn = keras.losses.get(loss) if kind else None
        return kind, (lambda y, p: fn(y, p).mean()) if kind else None
    kind = _LOSSES.get(type(loss).__name__)
    if kind is None or getattr(loss, "from_logits", False):
        return None, None
    return kind, loss


def why_not(model):
    """``None`` when ``TorchLoop`` can train ``model``, else the reason."""
    if keras.backend.backend() != "torch":
        return f"it needs the torch backend, not {keras.backend.backend()}"
    if getattr(model, "_nodes_by_depth", None) is None:
        return "it is not a functional model"
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return "it has several inputs or outputs"
    if len(model.outputs[0].shape) != 2:
        return "its output is not one vector per sample"
    if model.optimizer is None or getattr(model, "loss", None) is None:
        return "it is not compiled"
    if getattr(model.loss, "from_logits", False):
        return "a from_logits loss is trained by fit"
    if _loss_kind(model.loss)[0] is None:
        return f"the {model.loss if isinstance(model.loss, str) else type(model.loss).__name__} loss is trained by fit"
    for layer in model._flatten_layers(include_self=False):
        if type(layer) is L.Masking or getattr(layer, "mask_zero", False):
            return "it uses masks"
    policies = {layer.dtype_policy.name for layer in model._flatten_layers(include_self=False)}
    if keras.config.dtype_policy().name != "float32" or policies - {"float32"}:
        return "mixed precision is trained by fit"
    if getattr(model.optimizer, "loss_scale_factor", None) or getattr(model.optimizer, "gradient_accumulation_steps", None):
        return "loss scaling / gradient accumulation is trained by fit"
    return None


class TorchLoop:
    """A hand-written torch training loop over the Keras model (see the module docstring)."""

    name = "torch"

    def supports(self, model, config):
        reason = why_not(model)
        return reason is None, reason or ""

    def run(self, model, x, y, *, validation_data, epochs, initial_epoch, batch_size, callbacks):
        from kzoo.engine.kernels import accelerate

        accelerate(model)  # layers that run as Keras layers (a Bidirectional LSTM) get the fused kernels too
        device = keras.ops.zeros(()).device  # where Keras puts new tensors (its default device)
        graph = compile_graph(model)
        kind, loss_object = _loss_kind(model.loss)
        feed = _Feed(x, y, batch_size, device)
        steps = feed.steps
        if feed.samples == 0:  # as fit: an epoch needs a step (and the epoch's logs one batch)
            raise ValueError("num_samples should be a positive integer value, but got num_samples=0")
        # host syncs: every batch on CPU (free: the CPU has already finished), ~20 per epoch on an accelerator
        every = 1 if str(device).startswith("cpu") else max(1, steps // 20)

        trainable = list(model.trainable_variables)
        params = [v.value for v in trainable]  # the Parameters themselves: Keras assigns in place (copy_)
        regularized = [v for v in trainable if getattr(v, "regularizer", None) is not None]
        optimizer = optimizer_step(model.optimizer, trainable)
        if isinstance(optimizer, FusedAdam):
            slots = optimizer.slots
            for kernel in graph.conv_kernels:
                if kernel.trainable:
                    restride(kernel, slots(kernel))

        def compiled_loss(out, logits, yb):
            if kind == "sparse_cce" and logits is not None:
                return F.cross_entropy(logits, yb)
            if kind == "cce" and logits is not None:
                return -(yb * F.log_softmax(logits, dim=-1)).sum(-1).mean()
            if out is None:
                out = torch.softmax(logits, dim=-1)
            return loss_object(yb, out)

        def batch_loss(out, logits, added, yb):
            """What ``Model.compute_loss`` adds up, in training and evaluation: the compiled loss, the
            losses layers added in the forward pass and the weight regularizers (``model.losses``)."""
            loss = compiled_loss(out, logits, yb)
            extra = added + [v.regularizer(v.value) for v in regularized]
            if not extra:
                return loss
            return torch.stack([loss] + [(t if t.is_floating_point() else t.float()).sum() for t in extra]).sum()

        def correct(out, logits, yb):
            pred = (logits if logits is not None else out).argmax(-1)
            truth = yb if kind == "sparse_cce" else yb.argmax(-1)
            return (pred == truth).sum()

        history = keras.callbacks.History()
        cbs = keras.callbacks.CallbackList(list(callbacks) + [history], model=model, epochs=epochs, steps=steps,
                                           verbose=0)
        model.stop_training = False
        cbs.on_train_begin()
        logs = {}
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            totals = torch.zeros(2, dtype=torch.float64, device=device)  # loss x samples, correct
            seen = 0
            for step, (xb, yb) in enumerate(feed.epoch()):
                seen += len(yb)
                out, logits, added = graph.forward(xb, True)
                loss = batch_loss(out, logits, added, yb)
                for p in params:
                    p.grad = None
                loss.backward()
                grads = [p.grad for p in params]
                with torch.no_grad():
                    optimizer.apply(grads)
                    totals[0].add_(loss.detach(), alpha=len(yb))
                    totals[1].add_(correct(out, logits, yb))
                if (step + 1) % every == 0 or step + 1 == steps:
                    values = (totals / seen).tolist()
                    logs = {"loss": values[0], "accuracy": values[1]}
                    cbs.on_train_batch_end(step, logs)
                    if model.stop_training:
                        feed.close()
                        break
            values = (totals / seen).tolist()
            logs = {"loss": values[0], "accuracy": values[1]}
            if validation_data is not None:  # also after a NaN, as fit does (the CSV keeps its columns)
                logs.update(self._validate(graph, validation_data, batch_size, batch_loss, correct, device))
            cbs.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        cbs.on_train_end(logs)
        return history

    @staticmethod
    def _validate(graph, validation_data, batch_size, batch_loss, correct, device):
        feed = (_Feed(validation_data, None, batch_size, device, shuffle=False) if _streamed(validation_data)
                else _Feed(*validation_data, batch_size, device, shuffle=False))
        totals = torch.zeros(2, dtype=torch.float64, device=device)
        seen = 0
        with torch.no_grad():
            for xb, yb in feed.epoch():
                out, logits, added = graph.forward(xb, False)
                totals += torch.stack([batch_loss(out, logits, added, yb).double() * len(yb),
                                       correct(out, logits, yb).double()])
                seen += len(yb)
        values = (totals / max(seen, 1)).tolist()
        return {"val_loss": values[0], "val_accuracy": values[1]}


def _streamed(x):
    return isinstance(x, keras.utils.PyDataset)


class _Feed:
    """One epoch of ``(x, y)`` device batches: arrays copied to the device once and indexed there, or a
    ``keras.utils.PyDataset`` (``y=None``) whose batches its background workers decode, copied as they come."""

    def __init__(self, x, y, batch_size, device, shuffle=True):
        self.device, self.batch_size, self.shuffle = device, batch_size, shuffle
        self.adapter = None
        if _streamed(x):
            from kzoo.engine._keras_compat import py_dataset_adapter

            self.adapter = py_dataset_adapter(x, shuffle=False)  # the dataset orders itself, seeded, per epoch
            self.samples, self.steps = x.samples, len(x)
        else:
            self.X, self.Y = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
            self.samples = len(self.Y)
            self.steps = -(-self.samples // batch_size)
        self._open = False

    def epoch(self):
        if self.adapter is None:
            n = self.samples
            order = torch.randperm(n, device=self.device) if self.shuffle else None
            for start in range(0, n, self.batch_size):
                if order is None:
                    yield self.X[start:start + self.batch_size], self.Y[start:start + self.batch_size]
                else:
                    idx = order[start:start + self.batch_size]
                    yield self.X[idx], self.Y[idx]
            return
        self.adapter.on_epoch_begin()
        self._open = True
        for batch in self.adapter.get_numpy_iterator():
            yield tuple(torch.as_tensor(a).to(self.device, non_blocking=True) for a in batch[:2])
        self.close()

    def close(self):
        if self._open:
            self._open = False
            self.adapter.on_epoch_end()
