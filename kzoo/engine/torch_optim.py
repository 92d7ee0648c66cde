"""The torch engine's optimizer step: Keras's Adam/AdamW in torch's fused kernel, Keras's SGD (momentum, Nesterov)
in a few ``_foreach`` ops, or the Keras optimizer's own ``apply``.

Each updates the compiled Keras optimizer's own variables (moments, the EMA of the weights, ``iterations``), so
learning-rate schedules, checkpoints and resume behave exactly as with ``fit``. The fused steps apply what
Keras's ``BaseOptimizer.apply`` adds around an optimizer's update, in Keras's order: ``clipnorm``, the decoupled
weight decay (``p -= lr * weight_decay * p`` before the update, ``_apply_weight_decay``), the update, the EMA of
the weights (``use_ema``: ``avg = m * avg + (1 - m) * p``, with ``m = 0`` at iteration 0), ``iterations += 1``.
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


class _DeviceStep:
    """What the capturable fused steps share: the learning rate read on the device (a variable, or a table of a
    schedule's values, :meth:`plan`), clipnorm, the decoupled weight decay, the EMA of the weights, and
    ``iterations`` incremented on the device; nothing reads a host value that changes from step to step.
    """

    SCALAR_TABLE = 20000  # the most steps a schedule of scalars only is tabulated for, one call per step

    @staticmethod
    def _keras_extras_usable(optimizer):
        """Whether Keras's ``apply`` adds nothing around the update that this step does not do too."""
        return (optimizer.clipvalue is None and optimizer.global_clipnorm is None
                and not optimizer.gradient_accumulation_steps and optimizer.loss_scale_factor is None
                and (not optimizer.use_ema or optimizer.ema_overwrite_frequency is None))

    def __init__(self, optimizer, variables):
        if not optimizer.built:
            optimizer.build(variables)
        self.optimizer = optimizer
        index = optimizer._get_variable_index
        self.variables = variables
        self.params = [v.value for v in variables]
        self.device = self.params[0].device
        self.host_lr = self.device.type == "cpu"
        self.lr_table = None  # (first iteration, device tensor of the schedule's values), see ``plan``
        self.decayed = []  # the parameters Keras decays (``_use_weight_decay``: not the excluded ones)
        if optimizer.weight_decay:
            self.decayed = [v.value for v in variables if optimizer._use_weight_decay(v)]
        self.averages = []  # (parameter, its moving average) with ``use_ema``
        if optimizer.use_ema:
            averages = optimizer._model_variables_moving_average
            self.averages = [(v.value, averages[index(v)].value) for v in variables]

    def _average_of(self, variable):
        if not self.optimizer.use_ema:
            return ()
        return (self.optimizer._model_variables_moving_average[self.optimizer._get_variable_index(variable)],)

    def slots(self, variable):
        """The optimizer variables of ``variable`` (``restride`` gives them its memory order)."""
        return self._average_of(variable)

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
        its = torch.arange(first, first + max(1, steps), dtype=opt.iterations.value.dtype, device=self.device)
        name = type(rate).__name__

        def at(step):
            return torch.as_tensor(rate(step), device=self.device).to(torch.float32).reshape(())

        probes = sorted({0, len(its) // 2, len(its) - 1})
        try:
            table = torch.as_tensor(rate(its), device=self.device).to(torch.float32).reshape(-1)
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
        lr = lr.value if hasattr(lr, "value") else torch.as_tensor(lr, device=self.device)
        return lr.to(torch.float32)

    def _clipped(self, grads):
        clip = self.optimizer.clipnorm
        if not clip:
            return grads
        # Keras clips each gradient by its own norm: g * clipnorm / max(|g|, clipnorm)
        clip = float(clip)
        return [(g * clip) / n.clamp(min=clip) for g, n in zip(grads, torch._foreach_norm(grads))]

    def _decay(self, lr):
        """Keras's decoupled weight decay, before the update: ``p *= 1 - weight_decay * lr``."""
        if self.decayed:
            torch._foreach_mul_(self.decayed, 1 - float(self.optimizer.weight_decay) * lr)

    def _finish(self):
        """The EMA of the weights (Keras's formula, momentum 0 at iteration 0), then ``iterations += 1``."""
        iterations = self.optimizer.iterations.value
        if self.averages:
            params, averages = zip(*self.averages)
            momentum = (iterations != 0).to(torch.float32) * float(self.optimizer.ema_momentum)
            torch._foreach_mul_(averages, momentum)
            torch._foreach_add_(averages, torch._foreach_mul(params, 1 - momentum))
        iterations.add_(1)  # Keras's ``assign_add(1)`` without its host constant


class FusedAdam(_DeviceStep):
    """Keras' Adam (and AdamW) update in torch's fused kernel (one pass over memory instead of Keras' eight
    ``_foreach``).

    It updates the Keras optimizer's own moment variables and ``iterations``, so checkpoints and resume are
    unchanged. Keras scales the step by ``alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)`` and puts epsilon outside
    the bias correction (``m / (sqrt(v) + eps)``); torch's kernel divides by its own bias corrections, computed
    from a step tensor. Giving the kernel Keras's ``alpha`` as its learning rate and a step count so large that
    its bias corrections are exactly 1 (``b^(2^30)`` underflows to 0) makes it compute Keras's update, epsilon
    included. ``clipnorm``, weight decay (AdamW's, or Adam's ``weight_decay``) and the EMA of the weights as
    Keras applies them (module docstring).

    Capturable (:mod:`kzoo.engine.torch_cuda_graph`): on an accelerator nothing in ``apply`` reads a host value
    that changes from step to step. ``t`` comes from the device ``iterations``, ``alpha`` is a device tensor
    (Keras's formula, in float64), and a learning-rate schedule is read from a table of its values for the
    run's steps (:meth:`plan`), computed by the schedule itself before the run.
    """

    @staticmethod
    def usable(optimizer):
        from kzoo.engine._keras_compat import torch_adam_classes

        return (type(optimizer) in torch_adam_classes() and not optimizer.amsgrad
                and _DeviceStep._keras_extras_usable(optimizer) and hasattr(torch, "_fused_adam_"))

    def __init__(self, optimizer, variables):
        super().__init__(optimizer, variables)
        index = optimizer._get_variable_index
        self.m = [optimizer._momentums[index(v)].value for v in variables]
        self.v = [optimizer._velocities[index(v)].value for v in variables]
        self.step = torch.full((), 2.0 ** 30, dtype=torch.float32, device=self.device)  # bias corrections = 1
        self.beta_1 = torch.tensor(optimizer.beta_1, dtype=torch.float64, device=self.device)
        self.beta_2 = torch.tensor(optimizer.beta_2, dtype=torch.float64, device=self.device)
        self._flat = None  # flat memory-order views, made at the first step (after ``restride``)

    def slots(self, variable):
        index = self.optimizer._get_variable_index(variable)
        return (self.optimizer._momentums[index], self.optimizer._velocities[index], *self._average_of(variable))

    def apply(self, grads):
        opt = self.optimizer
        iterations = opt.iterations.value
        lr = self._learning_rate()
        # Keras's formula (keras/src/backend/torch/optimizers/torch_adam.py) on device tensors, in float64:
        # 1 - 0.999^t in float32 loses ~1e-5 of its value to cancellation in the first steps
        t = (iterations + 1).to(torch.float64)
        alpha = lr * torch.sqrt(1 - torch.pow(self.beta_2, t)) / (1 - torch.pow(self.beta_1, t))
        # a CPU: the kernel's float overload (a free sync there); else its device-tensor one, no host sync
        alpha = float(alpha) if self.host_lr else alpha.to(torch.float32)
        if self._flat is None:
            self._flat = [[_memory_order(t) for t in group] for group in (self.params, self.m, self.v)]
        params, m, v = self._flat
        grads = self._clipped(grads)
        self._decay(lr)
        # the fused kernel walks memory in order: each gradient must share its parameter's memory order
        # (autograd gives it that; a gradient from elsewhere may not), then goes in as the same flat view
        grads = [_memory_order(g if _same_order(g, p) else torch.empty_like(p).copy_(g))
                 for g, p in zip(grads, self.params)]
        torch._fused_adam_(params, grads, m, v, [],
                           [self.step] * len(grads), lr=alpha, beta1=opt.beta_1, beta2=opt.beta_2,
                           weight_decay=0.0, eps=opt.epsilon, amsgrad=False, maximize=False)
        self._finish()


class FusedSGD(_DeviceStep):
    """Keras's SGD update (plain, momentum, Nesterov) in ``_foreach`` ops on device tensors, capturable.

    Keras's formula (``keras/src/optimizers/sgd.py``): ``m = momentum * m - lr * g``, then ``p += m``, or with
    Nesterov ``p += momentum * m - lr * g``; without momentum ``p -= lr * g``. ``lr`` is a device tensor (the
    optimizer's variable, or the schedule's table), so the step may be captured in a CUDA graph; ``clipnorm``,
    weight decay and the EMA of the weights as Keras applies them (module docstring).
    """

    @staticmethod
    def usable(optimizer):
        from kzoo.engine._keras_compat import torch_sgd_class

        return type(optimizer) is torch_sgd_class() and _DeviceStep._keras_extras_usable(optimizer)

    def __init__(self, optimizer, variables):
        super().__init__(optimizer, variables)
        index = optimizer._get_variable_index
        self.momentum = float(optimizer.momentum)
        self.m = [optimizer.momentums[index(v)].value for v in variables] if self.momentum else []

    def slots(self, variable):
        momentum = (self.optimizer.momentums[self.optimizer._get_variable_index(variable)],) if self.momentum else ()
        return momentum + self._average_of(variable)

    def apply(self, grads):
        lr = self._learning_rate()
        grads = self._clipped(grads)
        self._decay(lr)
        scaled = torch._foreach_mul(grads, lr)  # lr * g
        if not self.momentum:
            torch._foreach_sub_(self.params, scaled)
        else:
            torch._foreach_mul_(self.m, self.momentum)
            torch._foreach_sub_(self.m, scaled)
            if self.optimizer.nesterov:
                torch._foreach_sub_(self.params, scaled)
                torch._foreach_add_(self.params, self.m, alpha=self.momentum)
            else:
                torch._foreach_add_(self.params, self.m)
        self._finish()


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
    """The fastest step that updates ``variables`` as ``optimizer.apply`` does: fused Adam/AdamW or SGD, else
    Keras's own ``apply`` (other optimizers, weight constraints, value clipping, gradient accumulation, ...)."""
    if not any(v.constraint is not None for v in variables):
        for fused in (FusedAdam, FusedSGD):
            if fused.usable(optimizer):
                return fused(optimizer, variables)
    return KerasApply(optimizer, variables)


def descend(step, params, loss):
    """One optimizer step of a hand-written torch loop: fresh gradients of ``loss`` for ``params`` (the Keras
    variables' Parameters), then ``step.apply`` (a :class:`FusedAdam`, :class:`FusedSGD` or :class:`KerasApply`)."""
    for p in params:
        p.grad = None
    loss.backward()
    with torch.no_grad():
        step.apply([p.grad for p in params])
