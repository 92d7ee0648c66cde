"""The torch backend's fast training loop: the same Keras model, the same weights, native torch kernels.

``FastTorchLoop`` (chosen through ``kzoo.engine.loops``) trains the model's compiled graph
(:mod:`kzoo.engine.torch_graph`): data as torch tensors (:mod:`kzoo.engine.torch_feed`), a seeded shuffle, the
objective ``fit`` computes (cross-entropy from the logits of the final float32 softmax, plus, in training and
validation alike, the losses layers add and the weight regularizers), the model's own compiled Keras optimizer
(:mod:`kzoo.engine.torch_optim`: learning-rate schedules, clipnorm, weight decay, ``optimizer.iterations`` and
resumable checkpoints behave exactly as with ``fit``), loss and accuracy accumulated on the device, and the Keras
callbacks (checkpoints, CSV log, early stopping, NaN guard, progress bar) called as ``fit`` calls them.

On CUDA the training step (forward, loss, backward, optimizer update, metric sums) and the validation step are
each captured once in a CUDA graph and replayed (:mod:`kzoo.engine.torch_cuda_graph`; ``KZOO_CUDA_GRAPHS=0``
turns it off); a model or optimizer whose step cannot be captured trains eagerly, and says why in one line.

Inside a data-parallel run (:mod:`kzoo.engine.distributed`) each worker trains its shard of every global batch,
DDP averaging the gradients (:mod:`kzoo.engine.distributed.torch_ddp`); the logs the callbacks see are summed
over the workers and validation runs on rank 0 alone, so every worker stops at the same step.
"""

import keras
import torch
import torch.nn.functional as F
from keras import layers as L

from kzoo.engine import torch_cuda_graph
from kzoo.engine.callbacks import start_callbacks
from kzoo.engine.torch_cuda_graph import CapturedStep
from kzoo.engine.torch_feed import DeviceBatches, streamed
from kzoo.engine.torch_graph import compile_graph, restride
from kzoo.engine.torch_optim import KerasApply, descend, optimizer_step
from kzoo.engine.torch_precision import Precision
from kzoo.engine.torch_precision import why_not as precision_problem

_LOSSES = {
    "SparseCategoricalCrossentropy": "sparse_cce", "SparseSmoothedCrossentropy": "sparse_cce", "CategoricalCrossentropy": "cce",
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
    if (reason := precision_problem(model)) is not None:
        return reason
    if getattr(model.optimizer, "loss_scale_factor", None) or getattr(model.optimizer, "gradient_accumulation_steps", None):
        return "loss scaling / gradient accumulation is trained by fit"
    return None


class FastTorchLoop:
    """A hand-written torch training loop over the Keras model (see the module docstring)."""

    name = "torch"
    data_parallel = True  # trains with DDP when started as one of several workers
    seed = 0

    def supports(self, model, config):
        self.seed = getattr(config, "seed", None) or 0  # the shuffle's seed (DistributedSampler: seed + epoch)
        reason = why_not(model)
        return reason is None, reason or ""

    def run(self, model, x, y, *, validation_data, epochs, initial_epoch, batch_size, callbacks):
        from kzoo.engine.kernels import accelerate

        accelerate(model)  # layers that run as Keras layers (a Bidirectional LSTM) get the fused kernels too
        device = keras.ops.zeros(()).device  # where Keras puts new tensors (its default device)
        from kzoo.engine.distributed import torch_ddp

        graph = compile_graph(model)
        kind, loss_object = _loss_kind(model.loss)
        rank, replicas = torch_ddp.world() or (0, 1)
        feed = DeviceBatches(x, y, batch_size // replicas, device, seed=self.seed, rank=rank, replicas=replicas)
        steps = feed.steps
        if feed.samples == 0:  # as fit: an epoch needs a step (and the epoch's logs one batch)
            raise ValueError("num_samples should be a positive integer value, but got num_samples=0")
        # host syncs: every batch on CPU (free: the CPU has already finished), ~20 per epoch on an accelerator or
        # with several workers (each is an all-reduce of the logs)
        every = 1 if str(device).startswith("cpu") and replicas == 1 else max(1, steps // 20)

        trainable = list(model.trainable_variables)
        params = [v.value for v in trainable]  # the Parameters themselves: Keras assigns in place (copy_)
        regularized = [v for v in trainable if getattr(v, "regularizer", None) is not None]
        optimizer = optimizer_step(model.optimizer, trainable)
        if not isinstance(optimizer, KerasApply):
            slots = optimizer.slots
            for kernel in graph.conv_kernels:
                if kernel.trainable:
                    restride(kernel, slots(kernel))
        forward = graph.forward if replicas == 1 else torch_ddp.wrap(graph, params, torch.device(device))
        precision = Precision(model, device)  # autocast and loss scaling under a mixed dtype policy

        # label smoothing as Keras's cross-entropies apply it: (1 - s) * one_hot + s / classes (torch's is the same)
        smoothing = float(getattr(loss_object, "label_smoothing", 0.0) or 0.0) if kind in ("sparse_cce", "cce") else 0.0

        def compiled_loss(out, logits, yb):
            if kind == "sparse_cce" and logits is not None:
                return F.cross_entropy(logits, yb, label_smoothing=smoothing)
            if kind == "cce" and logits is not None:
                if smoothing:
                    yb = yb * (1 - smoothing) + smoothing / logits.shape[-1]
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

        totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss x samples, correct, samples

        def train_step(xb, yb):
            """One step, all on the device (captured in a CUDA graph: :mod:`kzoo.engine.torch_cuda_graph`)."""
            with precision.autocast():
                out, logits, added = forward(xb, True)
                loss = batch_loss(out, logits, added, yb)
            descend(optimizer, params, precision.scale(loss))
            with torch.no_grad():
                totals[0].add_(loss.detach(), alpha=len(yb))
                totals[1].add_(correct(out, logits, yb))
                totals[2].add_(len(yb))

        run_step = CapturedStep(train_step, device, reason=self._capture_reason(
            device, graph, optimizer, replicas, (epochs - initial_epoch) * steps, precision))
        self.captured, self.captured_optimizer = run_step, optimizer
        val_totals = torch.zeros(2, dtype=torch.float64, device=device)  # loss x samples, correct

        def val_step(xb, yb):
            with precision.autocast():
                out, logits, added = graph.forward(xb, False)
                val_totals.add_(torch.stack([batch_loss(out, logits, added, yb).double() * len(yb),
                                             correct(out, logits, yb).double()]))

        val_reason = self._capture_reason(device, graph)
        val_run = CapturedStep(val_step, device, reason=val_reason, name="validation step",
                               quiet=val_reason == run_step.reason)  # one message for both
        cbs, history = start_callbacks(model, callbacks, epochs=epochs, steps=steps)
        logs = {}
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            totals.zero_()
            for step, (xb, yb) in enumerate(feed.epoch(epoch)):
                run_step(xb, yb)
                if (step + 1) % every == 0 or step + 1 == steps:
                    logs = self._logs(totals, replicas)
                    cbs.on_train_batch_end(step, logs)
                    if model.stop_training:
                        feed.close()
                        break
            logs = self._logs(totals, replicas)
            if validation_data is not None:  # also after a NaN, as fit does (the CSV keeps its columns)
                validate = lambda: self._validate(val_run, val_totals, validation_data, batch_size,  # noqa: E731
                                                  device)
                cbs.on_test_begin()  # as fit's validation: e.g. the EMA weights swapped in (``--ema``)
                val_logs = validate() if replicas == 1 else torch_ddp.share(validate)
                cbs.on_test_end(val_logs)
                logs.update(val_logs)
            cbs.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        cbs.on_train_end(logs)
        return history

    @staticmethod
    def _logs(totals, replicas):
        """Loss and accuracy so far in the epoch, over every worker's samples."""
        if replicas > 1:
            from kzoo.engine.distributed.torch_ddp import global_sum

            totals = global_sum(totals.clone())
        loss, right, seen = totals.tolist()
        return {"loss": loss / seen, "accuracy": right / seen}

    @staticmethod
    def _capture_reason(device, graph, optimizer=None, replicas=1, steps=0, precision=None):
        """Why the step must run eagerly, not from a CUDA graph (``None``: it may be captured, or the device
        does not capture at all, which :class:`CapturedStep` knows by itself)."""
        from kzoo.engine.torch_graph import capturable_fallbacks

        if torch_cuda_graph.default_mode(device) == torch_cuda_graph.DIRECT:
            return None
        if replicas > 1:
            return "data-parallel steps (DDP) are not captured"
        if precision is not None and precision.scaler is not None:
            return "float16 loss scaling skips steps on the host, so it is not captured"
        keras_layers = [name for name, ok in capturable_fallbacks(graph) if not ok]
        if keras_layers:
            more = ", ..." if len(keras_layers) > 3 else ""
            return f"layers run as Keras layers: {', '.join(keras_layers[:3])}{more}"
        return None if optimizer is None else optimizer.plan(steps)

    @staticmethod
    def _validate(run_step, totals, validation_data, batch_size, device):
        feed = (DeviceBatches(validation_data, None, batch_size, device, shuffle=False) if streamed(validation_data)
                else DeviceBatches(*validation_data, batch_size, device, shuffle=False))
        totals.zero_()
        seen = 0
        with torch.no_grad():
            for xb, yb in feed.epoch():
                run_step(xb, yb)
                seen += len(yb)
        values = (totals / max(seen, 1)).tolist()
        return {"val_loss": values[0], "val_accuracy": values[1]}
