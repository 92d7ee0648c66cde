"""The torch engine's optimizer step: Keras's Adam in torch's fused kernel, or the Keras optimizer's own ``apply``.

Both update the compiled Keras optimizer's own variables (moments, ``iterations``), so learning-rate schedules,
checkpoints and resume behave exactly as with ``fit``.
"""

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
    unchanged. Keras scales the step by ``alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)`` and puts epsilon outside
    the bias correction (``m / (sqrt(v) + eps)``); torch's kernel divides by its own bias corrections, computed
    from a step tensor. Giving the kernel Keras's ``alpha`` as its learning rate and a step count so large that
    its bias corrections are exactly 1 (``b^(2^30)`` underflows to 0) makes it compute Keras's update, epsilon
    included. ``clipnorm`` clips each gradient first, as Keras does.

    Capturable (:mod:`kzoo.engine.torch_cuda_graph`): on an accelerator nothing in ``apply`` reads a host value
    that changes from step to step. ``t`` comes from the device ``iterations``, ``alpha`` is a device tensor
    (Keras's formula, in float64), and a learning-rate schedule is read from a table of its values for the
    run's steps (:meth:`plan`), computed by the schedule itself before the run.
    """

    SCALAR_TABLE = 20000  # the most steps a schedule of scalars only is tabulated for, one call per step

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
        device = self.m[0].device
        self.step = torch.full((), 2.0 ** 30, dtype=torch.float32, device=device)  # bias corrections = 1
        self.beta_1 = torch.tensor(optimizer.beta_1, dtype=torch.float64, device=device)
        self.beta_2 = torch.tensor(optimizer.beta_2, dtype=torch.float64, device=device)
        self.host_lr = device.type == "cpu"
        self.lr_table = None  # (first iteration, device tensor of the schedule's values), see ``plan``
        self._flat = None  # flat memory-order views, made at the first step (after ``restride``)

    def slots(self, variable):
        index = self.optimizer._get_variable_index(variable)
        return self.optimizer._momentums[index], self.optimizer._velocities[index]

    def plan(self, steps):
        """Prepare ``steps`` steps from the current ``iterations`` for capture; ``None``, or why they cannot be.

        A constant learning rate is a device variable the step reads (a callback that assigns it is seen); a
        schedule becomes a table of its values at every iteration of the run, computed by the schedule on a
        vector of iterations and checked against its scalar values.
        """
        from keras.optimizers.schedules import LearningRateSchedule

        opt = self.optimizer
        rate = opt._learning_rate
        if not isinstance(rate, LearningRateSchedule):
            return None if hasattr(rate, "value") else f"its learning rate is a {type(rate).__name__}"
        first = int(opt.iterations.numpy())
        its = torch.arange(first, first + max(1, steps), dtype=opt.iterations.value.dtype, device=self.step.device)
        name = type(rate).__name__

        def at(step):
            return torch.as_tensor(rate(step), device=self.step.device).to(torch.float32).reshape(())

        probes = sorted({0, len(its) // 2, len(its) - 1})
        try:
            table = torch.as_tensor(rate(its), device=self.step.device).to(torch.float32).reshape(-1)
            if table.shape != its.shape or table[probes].tolist() != [float(at(its[k])) for k in probes]:
                raise ValueError("not elementwise")
        except Exception:  # noqa: BLE001 (a schedule of scalars only, e.g. PiecewiseConstantDecay's ``cond``)
            if len(its) > self.SCALAR_TABLE:
                return f"the {name} schedule takes one step at a time and the run has {len(its)} steps"
            try:
                table = torch.stack([at(step) for step in its])
            except Exception as error:  # noqa: BLE001
                return f"the {name} schedule cannot be tabulated ({type(error).__name__})"
        self.lr_table = (first, table)
        return None

    def _learning_rate(self):
        opt = self.optimizer
        if self.lr_table is not None:
            first, table = self.lr_table
            index = (opt.iterations.value - first).clamp_(0, len(table) - 1)
            return table[index]
        lr = opt._get_current_learning_rate()
        lr = lr.value if hasattr(lr, "value") else torch.as_tensor(lr, device=self.step.device)
        return lr.to(torch.float32)

    def apply(self, grads):
        opt = self.optimizer
        iterations = opt.iterations.value
        # Keras's formula (keras/src/backend/torch/optimizers/torch_adam.py) on device tensors, in float64:
        # 1 - 0.999^t in float32 loses ~1e-5 of its value to cancellation in the first steps
        t = (iterations + 1).to(torch.float64)
        alpha = self._learning_rate() * torch.sqrt(1 - torch.pow(self.beta_2, t)) / (1 - torch.pow(self.beta_1, t))
        # a CPU: the kernel's float overload (a free sync there); else its device-tensor one, no host sync
        alpha = float(alpha) if self.host_lr else alpha.to(torch.float32)
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
                           [self.step] * len(grads), lr=alpha, beta1=opt.beta_1, beta2=opt.beta_2,
                           weight_decay=0.0, eps=opt.epsilon, amsgrad=False, maximize=False)
        iterations.add_(1)  # Keras's ``assign_add(1)`` without its host constant


class KerasApply:
    """Any other optimizer: the compiled Keras optimizer's own ``apply``."""

    def __init__(self, optimizer, variables):
        self.optimizer, self.variables = optimizer, variables

    def plan(self, steps):
        """Not capturable: Keras's ``apply`` makes device tensors of Python constants on every step."""
        return f"the {type(self.optimizer).__name__} optimizer runs as Keras's own apply (not capturable)"

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
