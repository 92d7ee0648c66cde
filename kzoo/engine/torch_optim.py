"""The torch engine's optimizer step: Keras's Adam in torch's fused kernel, or the Keras optimizer's own ``apply``.

Both update the compiled Keras optimizer's own variables (moments, ``iterations``), so learning-rate schedules,
checkpoints and resume behave exactly as with ``fit``.
"""

import math

import torch

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
    ``eps / sqrt(1 - b2^t)`` makes the two the same update. ``clipnorm`` clips each gradient first, as Keras does.
    """

    @staticmethod
    def usable(optimizer):
        from kzoo.engine._keras_compat import torch_adam_class

        return (type(optimizer) is torch_adam_class() and not optimizer.amsgrad and not optimizer.weight_decay
                and optimizer.clipvalue is None and optimizer.global_clipnorm is None
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
        if opt.clipnorm:  # Keras clips each gradient by its own norm: g * clipnorm / max(|g|, clipnorm)
            clip = float(opt.clipnorm)
            grads = [(g * clip) / n.clamp(min=clip) for g, n in zip(grads, torch._foreach_norm(grads))]
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


def descend(step, params, loss):
    """One optimizer step of a hand-written torch loop: fresh gradients of ``loss`` for ``params`` (the Keras
    variables' Parameters), then ``step.apply`` (a :class:`FusedAdam` or :class:`KerasApply`)."""
    for p in params:
        p.grad = None
    loss.backward()
    with torch.no_grad():
        step.apply([p.grad for p in params])
