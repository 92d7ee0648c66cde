"""Data-parallel training on the jax backend: ``keras.distribution.DataParallel`` over local devices.

Keras replicates every variable on each device of a one-axis mesh and shards each batch along it; the train
step stays one ``jax.jit`` over global arrays, so XLA (GSPMD) computes the gradient of the global batch's loss,
with the all-reduce inserted by the compiler. A global batch B on N devices therefore takes the step a single
device takes with batch B (tests/engine/distributed/test_jax_data_parallel.py, to 1e-5), and metrics are global.

Batch norm: because the step is a global computation, ``BatchNormalization`` takes its moments over the global
batch, across devices; there is no per-device statistic to choose on jax, and ``--sync-bn`` changes nothing
(measured: a BN model trained on 2 simulated devices ends with the 1-device weights to ~1e-7).

A batch that does not split evenly (the last, smaller batch of an epoch; 31 samples on 2 devices) cannot be
sharded; inside :class:`scope` such a batch is replicated instead (every device computes the whole of that one
step), so every sample is still seen once per epoch and the step is exactly the single-device one. One host only:
with several processes the batch must split over each process's devices.

The devices are the first ``count`` of ``jax.devices()`` (or ``ids``): GPUs, or on a machine without one the
XLA host devices :func:`kzoo.backend.configure_devices` asked for before jax started. Several hosts: start one
process per host with ``jax.distributed.initialize(coordinator_address, num_processes, process_id)`` before
training; ``keras.distribution.DataParallel()`` then spans every process's devices (README, "More than one
device"). ``keras.distribution`` is JAX-only in Keras 3.15.
"""

from kzoo.errors import BackendError


def _place_evenly(place):
    """``distribute_data_input`` that replicates a batch its devices cannot share evenly instead of failing."""

    def place_batch(per_process_batch, layout, batch_dim_name):
        import jax
        from jax.sharding import NamedSharding, PartitionSpec

        sharding = getattr(layout, "backend_layout", layout)
        if isinstance(sharding, NamedSharding) and jax.process_count() == 1 and per_process_batch.ndim:
            axis = sharding.spec[0] if len(sharding.spec) else None
            parts = sharding.mesh.shape[axis] if isinstance(axis, str) else 1
            if per_process_batch.shape[0] % parts:
                sharding = NamedSharding(sharding.mesh, PartitionSpec())
        return place(per_process_batch, sharding, batch_dim_name)

    place_batch.kzoo_wrapped = place
    return place_batch


def devices(count, ids=None):
    """The jax devices to train on: the first ``count`` (or those of ``ids``)."""
    import jax

    available = jax.devices()
    chosen = list(ids) if ids else list(range(count))
    if max(chosen) >= len(available):
        kind = available[0].platform.upper()
        hint = ("" if kind != "CPU" else f" The simulated devices are made by kzoo.backend.configure_devices("
                f"'jax', {count}) before jax starts.")
        raise BackendError(f"--devices {','.join(map(str, ids)) if ids else count}: jax sees {len(available)} "
                           f"{kind} device(s) in this process.{hint}")
    return [available[i] for i in chosen]


def distribution(count, ids=None):
    """A data-parallel ``keras.distribution.Distribution`` over ``count`` devices."""
    import keras

    return keras.distribution.DataParallel(devices=devices(count, ids))


class scope:  # noqa: N801 - used as a context manager, like contextlib's
    """Keras's global distribution set to data parallelism while inside; the previous one back on exit.

    Re-entrant: the trainer builds one and enters it around model creation or loading, ``compile`` and training
    (Keras shards each batch when ``fit`` or ``evaluate`` runs, so training must run inside too).
    """

    def __init__(self, count, ids=None):
        self.distribution = distribution(count, ids)
        self._previous = []

    def __enter__(self):
        import keras

        from kzoo.engine._keras_compat import jax_data_input_module

        module = jax_data_input_module()
        self._previous.append((keras.distribution.distribution(), module.distribute_data_input))
        if not hasattr(module.distribute_data_input, "kzoo_wrapped"):
            module.distribute_data_input = _place_evenly(module.distribute_data_input)
        keras.distribution.set_distribution(self.distribution)
        return self.distribution

    def __exit__(self, *exc):
        import keras

        from kzoo.engine._keras_compat import jax_data_input_module

        previous, place = self._previous.pop()
        keras.distribution.set_distribution(previous)
        jax_data_input_module().distribute_data_input = place
        return False
