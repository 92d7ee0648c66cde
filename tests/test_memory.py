"""Memory estimates from shapes, before weights are allocated (kzoo.memory)."""

import math

import pytest

from kzoo.errors import ResourceError
from kzoo.memory import activation_bytes, available_memory, check_training_fits, create_model_within_memory, \
    weight_bytes


def test_available_memory_reads_meminfo():
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":", 1) for line in meminfo)
    assert abs(available_memory() - int(fields["MemAvailable"].split()[0]) * 1024) < 2**30  # other processes run


def test_mlp_estimate_by_hand():
    # 28x28x1 -> Flatten 784 -> Dense 32 -> Dense 16 -> logits 10 -> softmax 10 (float32)
    model = create_model_within_memory("mlp", num_classes=10, hidden_sizes="32,16")
    params = (784 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)
    assert weight_bytes(model) == 4 * params == 4 * model.count_params()
    layer_outputs = sum(math.prod(layer.output.shape[1:]) for layer in model.layers)  # the input layer included
    assert activation_bytes(model) == 4 * layer_outputs


def test_a_model_that_fits_gets_real_weights():
    import numpy as np

    model = create_model_within_memory("lenet5")
    kernel = np.asarray(model.weights[0].numpy())
    assert kernel.shape == tuple(model.weights[0].shape) and kernel.std() > 0


def test_refused_before_any_weight_is_allocated():
    # vgg16 at 20000x20000x3: 625x625x512 features into a 4096-unit dense layer = 3.3 TB of weights
    with pytest.raises(ResourceError) as info:
        create_model_within_memory("vgg16", input_shape=(20000, 20000, 3))
    assert "819,235,597,096 parameters" in str(info.value) and "3.3 TB" in str(info.value)


def test_refused_against_the_memory_given():
    with pytest.raises(ResourceError, match="needs about 246.8 kB"):
        create_model_within_memory("lenet5", available=100_000)
    assert create_model_within_memory("lenet5", available=300_000).count_params() == 61_706


def test_training_estimate_scales_with_the_batch():
    model = create_model_within_memory("lenet5")
    per_sample, weights = activation_bytes(model), weight_bytes(model)
    check_training_fits(model, 64, available=64 * per_sample + 2 * weights)
    with pytest.raises(ResourceError, match="--batch-size 65"):
        check_training_fits(model, 65, available=64 * per_sample + 2 * weights)
