"""Data-parallel training on the tensorflow backend: ``tf.distribute.MirroredStrategy`` over local devices.

One process holds a replica of every variable on each device; ``keras.Model.fit`` (plain or kzoo's tf loop,
:mod:`kzoo.engine.loops`) splits each global batch evenly over the replicas, and the strategy all-reduces the
gradients before every update. Keras divides each replica's loss by the number of replicas, so a global batch
B on N devices takes the step a single device takes with batch B (tests/engine/distributed/test_tf_mirrored.py,
to 1e-5). Metrics are global: their variables are summed over the replicas when read.

The devices are the GPUs (the first ``count``, or ``ids``), or on a machine without GPU the logical CPU devices
that :func:`kzoo.backend.configure_devices` made before TensorFlow started.

Batch norm: each replica normalises with the statistics of its own part of the batch (per-device, as
``MirroredStrategy`` does by default). :func:`synchronize_batch_norm`, which the trainer calls on the model it
built or loaded when ``--sync-bn`` is given, makes every ``BatchNormalization`` layer all-reduce its batch
moments (Keras's ``synchronized=True``), for the statistics of the global batch.

Limits (Keras 3.15, TensorFlow 2.21): one host only, because Keras 3 with ``MultiWorkerMirroredStrategy`` is
broken (keras-team/keras#20585); and one train step per ``tf.function`` call, because ``steps_per_execution`` > 1
under ``MirroredStrategy`` fails in TensorFlow ("You must feed a value for placeholder tensor ..."), so kzoo's tf
loop keeps 1 under a strategy. When the last batch of an epoch is smaller than the global batch, the replicas get
unequal parts and the step averages their means, which differs slightly from the mean over that batch.
"""

import types

from kzoo.errors import BackendError

_STRATEGIES = {}  # device names -> the process's strategy for them: variables belong to the strategy they were made in


def device_names(count, ids=None):
    """The TensorFlow device names to mirror over: GPUs when there are any, else logical CPU devices."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        chosen = list(ids) if ids else list(range(count))
        if max(chosen) >= len(gpus):
            raise BackendError(f"--devices: TensorFlow sees {len(gpus)} GPU(s), ids 0-{len(gpus) - 1}. "
                               f"Received: devices={count if not ids else ','.join(map(str, ids))}.")
        return [gpus[i].name for i in chosen]
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) < count:
        raise BackendError(f"--devices {count}: TensorFlow has {len(cpus)} CPU device(s) in this process; the "
                           f"simulated devices are made by kzoo.backend.configure_devices('tensorflow', {count}) "
                           f"before TensorFlow starts.")
    return [device.name for device in cpus[:count]]


def strategy(count, ids=None):
    """The ``MirroredStrategy`` over ``count`` devices (or GPU ``ids``), one per device set and process."""
    import tensorflow as tf

    names = tuple(device_names(count, ids))
    if names not in _STRATEGIES:
        _STRATEGIES[names] = tf.distribute.MirroredStrategy(devices=list(names))
    return _STRATEGIES[names]


class scope:  # noqa: N801 - used as a context manager, like contextlib's
    """The strategy's scope, entered around model creation or loading, ``compile`` and training.

    Re-entrant: the trainer builds one and enters it for each of these steps. ``sync_bn`` is recorded for
    :func:`synchronize_batch_norm` (``self.sync_bn``); entering the scope changes no layer by itself.
    """

    def __init__(self, count, ids=None, sync_bn=False):
        self.strategy = strategy(count, ids)
        self.sync_bn = sync_bn
        self._entered = []

    def __enter__(self):
        context = self.strategy.scope()
        context.__enter__()
        self._entered.append(context)
        return self.strategy

    def __exit__(self, *exc):
        return self._entered.pop().__exit__(*exc)


def synchronize_batch_norm(model):
    """Make every ``BatchNormalization`` layer of ``model`` use the global batch's moments; returns how many.

    Sets Keras's ``synchronized`` on the layer instances (the moments are all-reduced over the replicas in each
    train step; kzoo's fused kernel, :mod:`kzoo.engine.tf_kernels`, steps aside for them). Their saved config
    keeps ``synchronized=False``: it is a choice of this run, and a file that says True does not load on torch
    or jax.
    """
    import keras

    changed = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized:
            layer.synchronized = True
            layer.get_config = types.MethodType(_portable_config, layer)
            changed += 1
    if changed:  # the traced steps read `synchronized` when they are built
        model.train_function = model.test_function = model.predict_function = None
    return changed


def _portable_config(layer):
    return {**type(layer).get_config(layer), "synchronized": False}


def even_first_batch(samples, batch_size, replicas):
    """A batch size for ``samples`` in-memory samples that TensorFlow 2.21 can evaluate on ``replicas`` devices.

    Two failures to avoid (Keras 3.15): the model's metrics are built from the mean over replicas of the first
    batch (``_maybe_symbolic_build``), which fails when the replicas' parts differ in size (a validation set
    smaller than the batch, of an odd size on 2 devices); and a batch smaller than the number of replicas leaves
    one of them empty, which fails in the step ("You must feed a value for placeholder tensor ..."). The largest
    batch up to ``batch_size`` whose first batch splits evenly and whose last one reaches every replica.
    """
    first = min(samples, batch_size)
    for size in range(first - first % replicas, replicas - 1, -replicas):
        if samples % size == 0 or samples % size >= replicas:
            return size
    return batch_size


def distribute_stream(py_dataset, strategy):
    """A ``keras.utils.PyDataset`` as an endless distributed dataset, each global batch split over the replicas.

    Keras 3.15 feeds a PyDataset to ``MirroredStrategy`` through a ``tf.data`` generator over its enqueuer, and
    also opens that generator once to peek at the first batch (``_maybe_symbolic_build``): with background workers
    both draw from one queue, so steps train on parts of different batches, some samples twice and some never,
    or fail on unequal shapes (measured: 215 samples, batch 32, 2 devices), and the stream's epoch hook runs once
    too often. Here each pass of a generator draws the batches through Keras's own enqueuer (its workers) and
    gives replica ``r`` part ``r`` of each batch (``numpy.array_split``); the stream's ``on_epoch_end`` (kzoo's
    image batches draw their next order there) runs only after a complete pass, and a pass opened and left (the
    peek, the prefetch after the last epoch) only stops its workers. The dataset repeats: ``fit`` must be given
    ``steps_per_epoch=len(py_dataset)`` (``validation_steps`` likewise), so that each epoch is one pass
    (:func:`kzoo.engine.loops.FitLoop`); without a count Keras runs one empty step per epoch, which still
    advances the optimizer's iteration counter.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from kzoo.engine._keras_compat import py_dataset_adapter

    replicas = strategy.num_replicas_in_sync
    signature = keras.tree.map_structure(
        lambda t: tf.TensorSpec((None, *np.shape(t)[1:]), tf.as_dtype(np.asarray(t).dtype)), py_dataset[0])

    def one_pass():
        adapter = py_dataset_adapter(py_dataset)
        adapter.on_epoch_begin()
        complete = False
        try:
            for batch in adapter.get_numpy_iterator():
                pieces = [np.array_split(np.asarray(t), replicas) for t in keras.tree.flatten(batch)]
                for r in range(replicas):
                    yield keras.tree.pack_sequence_as(batch, [piece[r] for piece in pieces])
            complete = True
            adapter.on_epoch_end()
        finally:
            if not complete and adapter.enqueuer is not None:
                adapter.enqueuer.stop()

    def dataset(_context):
        return tf.data.Dataset.from_generator(one_pass, output_signature=signature).repeat()

    return strategy.distribute_datasets_from_function(dataset)
