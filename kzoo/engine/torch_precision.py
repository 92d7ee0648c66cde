"""Mixed precision in the torch engine: ``torch.autocast`` around the forward pass and the loss, loss scaling.

A model built under a mixed Keras policy (:mod:`kzoo.engine.precision`) keeps float32 variables; the engine's
native calls (:mod:`kzoo.engine.torch_graph`) run on those Parameters under ``torch.autocast`` in the policy's
compute dtype, so convolutions and matrix products run in bfloat16 (or float16) on bfloat16 copies autocast
makes once per step, while the ops autocast keeps in float32 (cross-entropy, softmax, reductions) stay there.
Layers that run as Keras layers compute in the policy's dtype themselves. Under ``mixed_float16`` Keras's
``compile`` has wrapped the optimizer in a ``LossScaleOptimizer``: the engine multiplies the loss by its
dynamic scale before ``backward`` and the optimizer unscales, skips steps with non-finite gradients and
adapts the scale, exactly as in ``fit`` (its variables are in the checkpoints).
"""

import contextlib

import torch

_MIXED = {"mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}


def _policies(model):
    import keras

    return {keras.config.dtype_policy().name} | {layer.dtype_policy.name
                                                 for layer in model._flatten_layers(include_self=False)}


def why_not(model):
    """``None`` when the engine can train ``model``'s dtype policies, else the reason."""
    mixed = _policies(model) - {"float32"}
    if len(mixed) > 1 or mixed - set(_MIXED):
        return f"its dtype policies ({', '.join(sorted(mixed))}) are trained by fit"
    return None


class Precision:
    """How one model trains: ``autocast()`` around forward and loss, ``scale(loss)`` before ``backward``."""

    def __init__(self, model, device):
        from keras.optimizers import LossScaleOptimizer

        mixed = [_MIXED[name] for name in _policies(model) if name in _MIXED]
        self.dtype = mixed[0] if mixed else None
        self.device_type = torch.device(device).type
        self.scaler = model.optimizer if isinstance(model.optimizer, LossScaleOptimizer) else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        # no cast cache on CUDA: a step captured in a CUDA graph must recast the weights on every replay
        return torch.autocast(self.device_type, dtype=self.dtype, cache_enabled=self.device_type != "cuda")

    def scale(self, loss):
        return loss if self.scaler is None else self.scaler.scale_loss(loss)
