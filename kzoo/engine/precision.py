"""Mixed precision: the Keras dtype policy of a ``--mixed-precision`` run, and putting back the one before it.

``mixed_bfloat16`` wherever the device computes in bfloat16 (every CPU, NVIDIA GPUs from Ampere on),
``mixed_float16`` elsewhere (older GPUs; Keras's ``compile`` then wraps the optimizer in a
``LossScaleOptimizer``). Either way the variables stay float32, so checkpoints load into a float32 build.
The policy is global in Keras: it is set for one run only (:func:`use_mixed_policy`, :func:`restore_policy`),
so a later run in the same process builds float32 models again.
"""


def bf16_capable(backend):
    """Whether ``backend``'s default device computes in bfloat16 (CPUs; CUDA GPUs of compute capability 8+)."""
    try:
        if backend == "torch":
            import torch

            return not torch.cuda.is_available() or torch.cuda.is_bf16_supported(including_emulation=False)
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
            return not gpus or tuple(details.get("compute_capability", (0, 0))) >= (8, 0)
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform == "cpu":
                return True
            capability = getattr(device, "compute_capability", "0")
            return float(capability) >= 8.0
    except Exception:  # an unknown device: float16 with loss scaling works everywhere
        return False
    return True


def mixed_policy_name(backend):
    return "mixed_bfloat16" if bf16_capable(backend) else "mixed_float16"


def use_mixed_policy(backend):
    """Set the global mixed dtype policy for ``backend``'s device; returns the policy it replaced."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(mixed_policy_name(backend))
    return previous


def restore_policy(previous):
    import keras

    keras.config.set_dtype_policy(previous)
