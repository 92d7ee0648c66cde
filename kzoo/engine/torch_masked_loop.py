"""The torch engine for the models its graph compiler leaves to ``fit``: several inputs, masks, per-step outputs.

The text models (translation's encoder-decoders, the captioner, masked text classifiers) take several inputs
and Keras masks (``Embedding(mask_zero=True)``), which :mod:`kzoo.engine.torch_graph` does not propagate.
``MaskedTorchLoop`` runs the model's own Keras forward pass (masks included; the recurrent layers on torch's
fused kernels, :mod:`kzoo.engine.torch_kernels`) up to the logits of its final float32 softmax, and trains it
as ``fit`` does, minus ``fit``'s costs on torch: the sparse cross-entropy comes from the logits in one fused
kernel (``fit`` normalises, clips and takes the log of a ``(batch, steps, vocabulary)`` softmax and goes back
through all of it); where the logits come from a plain ``Dense``, it multiplies only the steps the output mask
keeps (a translation's padding is more than half of its target steps, and the vocabulary-wide product is most
of a step's work); Adam is the fused update of :mod:`kzoo.engine.torch_optim` where it applies. While it
trains, the ``Conv2D`` and 2D pooling layers (an image encoder's) call torch on a channels-last view of their
input (the graph compiler's kernels, :func:`kzoo.engine.torch_graph.native_layer`) instead of Keras's, which
copies every input and output to NCHW and back: on the captioner's 28x112 strips those copies were a quarter
of a step.

What it computes is what ``fit`` computes (tests/engine/test_torch_masked_loop.py): the loss is the mean over
the steps the output mask keeps and ``ignore_class`` does not drop, batch losses averaged by batch size, the
accuracy over the kept steps, plus the losses layers add and the weight regularizers; callbacks, learning-rate
schedules, clipnorm and checkpoints behave as with ``fit``.
"""

import weakref

import keras
import torch
import torch.nn.functional as F

from kzoo.engine.callbacks import start_callbacks
from kzoo.engine import torch_cuda_graph
from kzoo.engine.torch_graph import native_layer, restride
from kzoo.engine.torch_optim import KerasApply, descend, optimizer_step
from kzoo.engine.torch_precision import Precision
from kzoo.engine.torch_precision import why_not as precision_problem

_LOGITS_MODELS = weakref.WeakKeyDictionary()


def _softmax_head(model):
    """The input of the model's final float32 ``Activation("softmax")``, or ``None``."""
    if getattr(model, "_nodes_by_depth", None) is None or len(model.outputs) != 1:
        return None
    history = getattr(model.outputs[0], "_keras_history", None)
    layer = history.operation if history else None
    if (type(layer) is not keras.layers.Activation or layer.activation is not keras.activations.softmax
            or layer.dtype_policy.compute_dtype != "float32"):
        return None
    return layer.input


def why_not(model):
    """``None`` when ``MaskedTorchLoop`` can train ``model``, else the reason."""
    if keras.backend.backend() != "torch":
        return f"it needs the torch backend, not {keras.backend.backend()}"
    if model.optimizer is None or getattr(model, "loss", None) is None:
        return "it is not compiled"
    loss = model.loss
    if type(loss) is not keras.losses.SparseCategoricalCrossentropy or loss.from_logits:
        return "only a sparse categorical cross-entropy on probabilities is trained here"
    metrics = getattr(getattr(model, "_compile_metrics", None), "_user_metrics", None) or []
    if [(type(m), m.name) for m in metrics] != [(keras.metrics.SparseCategoricalAccuracy, "accuracy")]:
        return "only the accuracy metric is computed here"
    if _softmax_head(model) is None:
        return "its output is not a final float32 softmax"
    if (reason := precision_problem(model)) is not None:
        return reason
    if getattr(model.optimizer, "loss_scale_factor", None) or getattr(model.optimizer, "gradient_accumulation_steps",
                                                                      None):
        return "loss scaling / gradient accumulation is trained by fit"
    return None


def _plain_logits_layer(model):
    """The ``Dense`` (linear, no regularizer) whose output is the softmax's input, or ``None``."""
    history = getattr(_softmax_head(model), "_keras_history", None)
    layer = history.operation if history else None
    if (type(layer) is keras.layers.Dense and layer.activation is keras.activations.linear
            and getattr(layer, "lora_rank", None) is None and len(layer._inbound_nodes) == 1 and not any(getattr(layer, f"{w}_regularizer", None) for w in ("kernel", "bias", "activity"))):
        return layer
    return None


def forward_parts(model):
    """``(keras model, logits Dense or None)``: the model up to the logits, or, where they come from a plain
    ``Dense``, up to that layer's input (the Dense is then applied to the kept steps only)."""
    parts = _LOGITS_MODELS.get(model)
    if parts is None:
        dense = _plain_logits_layer(model)
        end = dense.input if dense is not None else _softmax_head(model)
        parts = _LOGITS_MODELS[model] = (keras.Model(model.inputs, end, name=f"{model.name}_logits"), dense)
    return parts


_IMAGE_LAYERS = (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def _native_image_layers(model):
    """Give the image layers of ``model`` (nested models included) native torch calls; returns the layers."""
    patched = []
    for layer in model._flatten_layers(include_self=False):
        fn = native_layer(layer) if type(layer) in _IMAGE_LAYERS and "call" not in layer.__dict__ else None
        if fn is not None:
            layer.call = lambda inputs, fn=fn: fn(inputs, False)
            patched.append(layer)
    return patched


class _Batches:
    """One epoch of device batches of several input arrays and one target array (a seeded torch shuffle)."""

    def __init__(self, x, y, batch_size, device, shuffle=True):
        self.inputs = [torch.as_tensor(a, device=device) for a in (x if isinstance(x, (list, tuple)) else [x])]
        self.y = torch.as_tensor(y, device=device)
        self.batch_size, self.device, self.shuffle = batch_size, device, shuffle
        self.samples = len(self.y)
        self.steps = -(-self.samples // batch_size)

    def epoch(self):
        order = torch.randperm(self.samples, device=self.device) if self.shuffle else None
        for start in range(0, self.samples, self.batch_size):
            if order is None:
                pick = slice(start, start + self.batch_size)
                yield [a[pick] for a in self.inputs], self.y[pick]
            else:
                idx = order[start:start + self.batch_size]
                yield [a[idx] for a in self.inputs], self.y[idx]


class MaskedTorchLoop:
    """A torch training loop over the model's own Keras forward pass (see the module docstring)."""

    name = "torch"
    data_parallel = False  # one device only: --devices needs the compiled-graph loop

    def supports(self, model, config):
        reason = why_not(model)
        return reason is None, reason or ""

    def run(self, model, x, y, *, validation_data, epochs, initial_epoch, batch_size, callbacks):
        from kzoo.engine.kernels import accelerate

        accelerate(model)
        device = keras.ops.zeros(()).device
        forward, dense = forward_parts(model)
        feed = _Batches(x, y, batch_size, device)
        if feed.samples == 0:
            raise ValueError("num_samples should be a positive integer value, but got num_samples=0")
        trainable = list(model.trainable_variables)
        params = [v.value for v in trainable]
        optimizer = optimizer_step(model.optimizer, trainable)
        if torch_cuda_graph.default_mode(device) != torch_cuda_graph.DIRECT:
            torch_cuda_graph.say_eager("training step", "the masked torch loop's steps have data-dependent shapes")
        image_layers = _native_image_layers(model)
        try:
            return self._train(model, optimizer, params, image_layers, forward, dense, feed, validation_data,
                               epochs, initial_epoch, batch_size, callbacks, device)
        finally:  # the model leaves the loop with Keras's own layer calls
            for layer in image_layers:
                del layer.call

    def _train(self, model, optimizer, params, image_layers, forward, dense, feed, validation_data, epochs,
               initial_epoch, batch_size, callbacks, device):
        ignore = model.loss.ignore_class
        if not isinstance(optimizer, KerasApply):  # conv kernels in torch's OIHW memory order: no weight copies
            for layer in image_layers:
                if type(layer) is keras.layers.Conv2D and layer.kernel.trainable:
                    restride(layer.kernel, optimizer.slots(layer.kernel))

        precision = Precision(model, device)  # autocast and loss scaling under a mixed dtype policy

        def batch_terms(inputs, yb, training):
            """``(loss, correct, counted)`` of one batch, as ``fit`` computes them."""
            with precision.autocast():
                return _batch_terms(inputs, yb, training)

        def _batch_terms(inputs, yb, training):
            out = forward(inputs, training=training)
            mask = keras.backend.get_keras_mask(out) if hasattr(keras.backend, "get_keras_mask") \
                else getattr(out, "_keras_mask", None)
            yb = yb.long().reshape(out.shape[:-1])
            if mask is not None:  # only the kept steps count: the logits of the others are never needed
                kept = mask.bool()
                out, yb = out[kept], yb[kept]
            if dense is not None:
                out = torch.addmm(dense.bias.value, out.reshape(-1, out.shape[-1]), dense.kernel.value) \
                    if dense.use_bias else out.reshape(-1, out.shape[-1]) @ dense.kernel.value
            logits, yb = out.reshape(-1, out.shape[-1]), yb.reshape(-1)
            scored = yb != ignore if ignore is not None else None
            losses = F.cross_entropy(logits, yb.clamp(0, logits.shape[-1] - 1), reduction="none")
            if scored is None:
                loss = losses.mean()
            else:
                loss = (losses * scored).sum() / scored.sum().clamp(min=1)
            extra = list(forward.losses)
            if extra:
                loss = loss + torch.stack([t.float().sum() for t in extra]).sum()
            correct = (logits.argmax(-1) == yb).sum()
            return loss, correct, torch.tensor(len(yb), device=yb.device)

        cbs, history = start_callbacks(model, callbacks, epochs=epochs, steps=feed.steps)
        logs = {}
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss x samples, correct, counted
            seen = 0
            for step, (inputs, yb) in enumerate(feed.epoch()):
                seen += len(yb)
                loss, correct, counted = batch_terms(inputs, yb, True)
                descend(optimizer, params, precision.scale(loss))
                with torch.no_grad():
                    totals += torch.stack([loss.detach().double() * len(yb), correct.double(), counted.double()])
                logs = self._logs(totals, seen)
                cbs.on_train_batch_end(step, logs)
                if model.stop_training:
                    break
            if validation_data is not None:
                cbs.on_test_begin()  # as fit's validation: e.g. the EMA weights swapped in (``--ema``)
                val_logs = self._validate(validation_data, batch_size, device, batch_terms)
                cbs.on_test_end(val_logs)
                logs.update(val_logs)
            cbs.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        cbs.on_train_end(logs)
        return history

    @staticmethod
    def _logs(totals, seen, prefix=""):
        loss_sum, correct, counted = totals.tolist()
        return {f"{prefix}loss": loss_sum / max(seen, 1), f"{prefix}accuracy": correct / max(counted, 1.0)}

    def _validate(self, validation_data, batch_size, device, batch_terms):
        feed = _Batches(*validation_data, batch_size, device, shuffle=False)
        totals = torch.zeros(3, dtype=torch.float64, device=device)
        with torch.no_grad():
            for inputs, yb in feed.epoch():
                loss, correct, counted = batch_terms(inputs, yb, False)
                totals += torch.stack([loss.double() * len(yb), correct.double(), counted.double()])
        return self._logs(totals, feed.samples, "val_")
