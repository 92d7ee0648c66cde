"""Helpers of the weight-conversion tests."""

import numpy as np


def randomize_batch_norm(module, seed=0):
    """Non-trivial running statistics and affine parameters, so the conversion of all four is checked."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            with torch.no_grad():
                layer.running_mean.copy_(torch.rand(layer.num_features, generator=generator) - 0.5)
                layer.running_var.copy_(torch.rand(layer.num_features, generator=generator) + 0.5)
                layer.weight.copy_(torch.rand(layer.num_features, generator=generator) + 0.5)
                layer.bias.copy_(torch.rand(layer.num_features, generator=generator) * 0.4 - 0.2)


def max_relative_difference(actual, expected):
    return float(np.max(np.abs(np.asarray(actual) - expected)) / np.max(np.abs(expected)))


def logits_of(model, x):
    import keras

    return np.asarray(keras.Model(model.inputs, model.get_layer("logits").output).predict(x, verbose=0))
