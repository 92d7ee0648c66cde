"""The compiled torch graph specialised for inference: what ONNX Runtime does to a model, done to the Keras model.

:class:`kzoo.engine.torch_graph.CompiledGraph` computes each layer as it trains: a convolution, then a batch norm
that writes a new tensor, then a ReLU that writes another. At inference on a CPU these extra passes cost more than
their arithmetic: every fresh activation tensor is fresh memory the kernel must fault in (a 64x64x28x28 ReLU:
1.4 ms in place, 3-14 ms into a new tensor, measured here), which made ``kzoo predict`` on ResNet-18 0.77x a
native PyTorch model with ``ReLU(inplace=True)``. :class:`InferencePlan` rewrites the step list once:

* a ``BatchNormalization`` whose input is a linear ``Conv2D``'s output, read by nothing else, is folded into the
  convolution (kernel scaled by ``gamma / sqrt(var + eps)``, bias shifted), as ONNX exporters fold it; the folded
  weights are recomputed only when a variable changed (torch's version counters);
* a symmetric ``ZeroPadding2D`` read only by a ``"valid"`` ``Conv2D`` becomes that convolution's own padding;
* a ReLU, and the sum of an ``Add``, are computed in place when their input is a tensor this plan made and no
  later step reads (never the caller's input, never a view another step still reads).

Everything else runs as the compiled graph's own step. The outputs equal the unfused graph's up to float32
rounding (folding reorders a multiply); ``tests/engine/test_torch_inference.py`` compares them with
``model.predict``.
"""

import torch
import torch.nn.functional as F
from keras import activations
from keras import layers as L

from kzoo.engine.torch_graph import NATIVE, _to_cf, _to_cl

# steps whose output is a new tensor (never a view of their input): safe to overwrite once nobody reads the input
_FRESH = (L.Conv2D, L.BatchNormalization, L.Dense, L.MaxPooling2D, L.AveragePooling2D, L.Add, L.Concatenate,
          L.GlobalAveragePooling2D, L.GlobalMaxPooling2D, L.ZeroPadding2D)


def _is_relu(op):
    if type(op) is L.Activation:
        return op.activation is activations.relu
    return type(op) is L.ReLU and op.max_value is None and not op.negative_slope and not op.threshold


def _reads(step):
    kind, _, ins, _ = step
    if kind is NATIVE:
        return [ins] if isinstance(ins, int) else list(ins)
    return [id(t) for t in ins.keras_tensors]


def _folded_conv(conv, pad, bn):
    """``conv`` (with ``pad``'s zeros as its padding, and ``bn`` folded in, where given) as one torch call."""
    stride, dilation, groups = tuple(conv.strides), tuple(conv.dilation_rate), conv.groups
    if pad is not None:
        (top, _), (left, _) = pad.padding
        padding = (top, left)
    elif conv.padding == "valid":
        padding = 0
    else:  # CompiledGraph takes "same" natively at stride 1, or for a 1x1 kernel (no padding at any stride)
        padding = "same" if stride == (1, 1) else 0
    cache = {}

    def tensors():
        own = [conv.kernel, conv.bias]
        if bn is not None:
            own += [bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance]
        return [None if v is None else v.value for v in own]

    def weights():
        values = tensors()
        key = tuple((id(t), t._version) for t in values if t is not None)
        if cache.get("key") != key:
            kernel, bias = values[0].permute(3, 2, 0, 1), values[1]
            if bn is not None:
                gamma, beta, mean, var = values[2:]
                scale = torch.rsqrt(var + bn.epsilon)
                scale = scale if gamma is None else scale * gamma
                shift = -mean * scale if bias is None else (bias - mean) * scale
                bias = shift if beta is None else shift + beta
                kernel = kernel * scale.view(-1, 1, 1, 1)
            cache.update(key=key, kernel=kernel.contiguous(), bias=bias)
        return cache["kernel"], cache["bias"]

    def run(x, training):
        # channels_last memory format at every map size: at inference oneDNN is as fast or faster there even on
        # the small maps the training graph makes plain NCHW (ResNet-18, batch 64, 2 threads: 0.87x native
        # torch with those copies, 1.0-1.08x without, measured 2026-12-02)
        kernel, bias = weights()
        return _to_cl(F.conv2d(_to_cf(x), kernel, bias, stride, padding, dilation, groups))

    activation = conv.activation if bn is None else activations.linear
    if activation is activations.relu:
        return lambda x, training: torch.relu_(run(x, training))
    return run if activation is activations.linear else (lambda x, training: activation(run(x, training)))


class InferencePlan:
    """The steps of ``graph`` with the fusions above; ``forward(x)`` returns the model's output."""

    def __init__(self, graph):
        self.graph = graph
        steps, ops = list(graph.steps), list(graph.ops)
        readers = {}
        for step in steps:
            for value in _reads(step):
                readers[value] = readers.get(value, 0) + 1
        readers[graph.output_id] = readers.get(graph.output_id, 0) + 1  # the caller reads the output
        self.fused = []
        plan = []
        skip = set()
        for i, (step, op) in enumerate(zip(steps, ops)):
            if i in skip:
                continue
            kind, fn, ins, outs = step
            if kind is NATIVE and type(op) is L.Conv2D and op.data_format == "channels_last":
                pad = None
                pad_step = self._pad_before(plan, ins, readers, op)
                if pad_step is not None:
                    pad, ins = pad_step
                bn, outs_after = self._bn_after(steps, ops, i, outs, readers, op, skip)
                if pad is not None or bn is not None:
                    fn = _folded_conv(op, pad, bn)
                    outs = outs_after
                    self.fused.append(op.name + "".join(f"+{o.name}" for o in (pad, bn) if o is not None))
                plan.append([kind, fn, ins, outs, type(op) if bn is None else L.BatchNormalization, op])
                continue
            plan.append([kind, fn, ins, outs, type(op), op])
            if kind is NATIVE and _is_relu(op):
                plan[-1][4] = "relu"
            elif kind is NATIVE and type(op) is L.Add:
                plan[-1][4] = "add"
        self.steps = self._in_place(plan, readers)

    @staticmethod
    def _pad_before(plan, ins, readers, conv):
        """``(pad layer, its input)`` when ``ins`` is a symmetric zero padding read only by this valid conv."""
        if conv.padding != "valid" or not isinstance(ins, int) or readers.get(ins) != 1:
            return None
        for k in range(len(plan) - 1, -1, -1):
            kind, _, pad_ins, outs, _, layer = plan[k]
            if outs != [ins]:
                continue
            if kind is not NATIVE or type(layer) is not L.ZeroPadding2D or layer.data_format != "channels_last":
                return None
            (top, bottom), (left, right) = layer.padding
            if top != bottom or left != right:
                return None
            del plan[k]
            return layer, pad_ins
        return None

    @staticmethod
    def _bn_after(steps, ops, i, outs, readers, conv, skip):
        """The batch norm reading conv step ``i``'s output alone, and its outputs; ``(None, outs)`` if none."""
        if len(outs) != 1 or readers.get(outs[0]) != 1 or conv.activation is not activations.linear:
            return None, outs
        for j in range(i + 1, len(steps)):
            kind, _, ins, bn_outs = steps[j]
            op = ops[j]
            if outs[0] not in _reads(steps[j]):
                continue
            if kind is NATIVE and type(op) is L.BatchNormalization and ins == outs[0]:
                axes = op.axis if isinstance(op.axis, (list, tuple)) else [op.axis]
                if len(axes) == 1 and axes[0] in (-1, 3):
                    skip.add(j)
                    return op, bn_outs
            return None, outs
        return None, outs

    @staticmethod
    def _in_place(plan, readers):
        """The final ``(kind, fn, ins, outs)`` steps, ReLU and Add in place where that is safe."""
        fresh = set()  # values this plan made as new tensors
        steps = []
        for kind, fn, ins, outs, what, _ in plan:
            if kind is NATIVE and what == "relu" and ins in fresh and readers.get(ins) == 1:
                fn = lambda x, training: torch.relu_(x)  # noqa: E731
                fresh.add(outs[0])
            elif kind is NATIVE and what == "add" and (into := _accumulator(ins, fresh, readers)) is not None:
                fn = _add_into(into)
                fresh.add(outs[0])
            elif kind is NATIVE and what in _FRESH and len(outs) == 1:
                fresh.add(outs[0])
            steps.append((kind, fn, ins, outs))
        return steps

    def forward(self, x):
        values, _ = self.graph.run(self.steps, x, False)
        return values.get(self.graph.output_id)


def _accumulator(ins, fresh, readers):
    """Which input of an ``Add`` may hold the sum: a fresh tensor read by nothing else (with two inputs either
    one, as ``a + b == b + a`` exactly; with more, only the first keeps Keras's order of the sums)."""
    candidates = range(len(ins)) if len(ins) == 2 else range(1)
    for k in candidates:
        if ins[k] in fresh and readers.get(ins[k]) == 1 and ins.count(ins[k]) == 1:
            return k
    return None


def _add_into(k):
    def add(xs, training):
        y = xs[k]
        for j, x in enumerate(xs):
            if j != k:
                y = y.add_(x)
        return y

    return add
