"""The training loop and its per-backend seam: the only place in kzoo that may branch on the backend.

``FitLoop`` runs ``keras.Model.fit`` and works for every model on every backend. A backend-specific loop
registers itself in ``LOOPS`` and says, per model, whether it can take it; ``choose_loop`` falls back to
``fit`` with a message when it cannot.
"""


class FitLoop:
    """``keras.Model.fit`` with kzoo's callbacks."""

    name = "fit"

    def supports(self, model, config):
        return True, ""

    def run(self, model, x, y, *, validation_data, epochs, initial_epoch, batch_size, callbacks):
        from kzoo.engine.kernels import accelerate

        accelerate(model)
        # A keras.utils.PyDataset (y is None) yields its own (x, y) batches, in an order drawn per epoch from the
        # run's seed; Keras's shuffle of its batches would draw from Python's global `random`, whose state a
        # resumed run cannot replay.
        shuffle = y is not None
        if y is None:
            batch_size = None
        x, validation_data, distributed = _distributed_inputs(model, x, validation_data, batch_size)
        return model.fit(x, y, batch_size=batch_size, epochs=epochs, initial_epoch=initial_epoch,
                         validation_data=validation_data, callbacks=callbacks, verbose=0, shuffle=shuffle,
                         **distributed)


def _distributed_inputs(model, x, validation_data, batch_size):
    """``x``, ``validation_data`` and extra ``fit`` arguments under a tensorflow ``MirroredStrategy``.

    Streams (``keras.utils.PyDataset``) become endless per-replica datasets
    (:func:`~kzoo.engine.distributed.tf_mirrored.distribute_stream`), with their length as the steps of an epoch;
    in-memory validation gets a batch size TensorFlow can evaluate on the replicas
    (:func:`~kzoo.engine.distributed.tf_mirrored.even_first_batch`). Elsewhere everything is left as it is.
    """
    import keras

    if keras.backend.backend() != "tensorflow" or model.distribute_strategy.num_replicas_in_sync == 1:
        return x, validation_data, {}
    from kzoo.engine.distributed.tf_mirrored import distribute_stream, even_first_batch

    strategy = model.distribute_strategy
    extra = {}
    if isinstance(x, keras.utils.PyDataset):
        extra["steps_per_epoch"] = len(x)
        x = distribute_stream(x, strategy)
    if isinstance(validation_data, keras.utils.PyDataset):
        extra["validation_steps"] = len(validation_data)
        validation_data = distribute_stream(validation_data, strategy)
    elif isinstance(validation_data, tuple) and batch_size:
        extra["validation_batch_size"] = even_first_batch(len(validation_data[0]), batch_size,
                                                          strategy.num_replicas_in_sync)
    return x, validation_data, extra


def steps_per_call(model, batch_size, accelerator=False):
    """How many train steps one ``tf.function`` call should run (Keras's ``steps_per_execution``).

    Each call of a compiled step costs the same Python and runtime overhead (about 0.5 ms on this CPU), so a
    small model's step (LeNet-5 at batch 64: ~4 ms) loses 10-20% to it. Steps are grouped until a call holds
    about 1 GMAC of forward work on a CPU (50 on an accelerator), at most 16: small models get 16, a
    ResNet-18 step stays alone, so the progress bar and Ctrl-C still answer within a second or so.
    """
    from kzoo.summary import summarize

    try:
        macs = summarize(model)["macs"] * batch_size
    except Exception:  # an unusual model: keep one step per call
        return 1
    budget = 5e10 if accelerator else 1e9
    return max(1, min(16, int(budget // max(macs, 1))))


class TensorflowLoop(FitLoop):
    """``fit`` running several train steps per ``tf.function`` call on the tensorflow backend.

    ``steps_per_execution`` (:func:`steps_per_call`) is set on the compiled model for the run only: the
    compile config saved in checkpoints keeps 1, so the files load on torch (which refuses values above 1).
    Callbacks then see every N-th batch; the progress bar and the NaN guard work as before.

    XLA stays off on a CPU (see :class:`XlaFitLoop`): even for an MLP, where its steady state is faster
    (1.28x vs 0.86x native torch), compiling costs ~5 s per run, more than a short run saves.
    """

    name = "tf"

    def supports(self, model, config):
        return True, ""

    def _accelerator(self):
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))

    def run(self, model, x, y, *, batch_size, **kwargs):
        spe = steps_per_call(model, batch_size or 32, accelerator=self._accelerator())
        if model.distribute_strategy.num_replicas_in_sync > 1:
            # TensorFlow 2.21 cannot run several steps per call under MirroredStrategy ("You must feed a value
            # for placeholder tensor ..."): one step per call (kzoo.engine.distributed.tf_mirrored)
            spe = 1
        if model.steps_per_execution != spe:
            model.steps_per_execution = spe
            model.train_function = model.test_function = model.predict_function = None
        return super().run(model, x, y, batch_size=batch_size, **kwargs)


class XlaFitLoop(TensorflowLoop):
    """``fit`` with the train step compiled by XLA (``jit_compile=True``) on the tensorflow backend.

    Keras turns XLA off on CPU-only machines by default ("auto"), and measurements agree (docs/benchmarks.md:
    LeNet-5 0.58x native with XLA on 2 CPU cores vs 1.02x without), so "auto" takes it only with a GPU;
    ``--engine xla`` forces it. Models Keras cannot compile fall back to plain fit.
    """

    name = "xla"

    def __init__(self, forced=False):
        self.forced = forced

    def supports(self, model, config):
        from kzoo.engine._keras_compat import model_supports_jit

        if not model_supports_jit(model):
            return False, "Keras says it cannot be compiled by XLA"
        if not self.forced and not self._accelerator():
            return False, ""  # not worth it on CPU: the tf loop, silently
        return True, ""

    def run(self, model, x, y, **kwargs):
        if model.jit_compile is not True:
            model.jit_compile = True
            model.train_function = model.test_function = model.predict_function = None
        return super().run(model, x, y, **kwargs)


class TorchLoop:
    """The torch backend's fast loops, imported only when chosen: ``kzoo.engine.torch_loop`` (the compiled graph)
    for the models it takes, else ``kzoo.engine.torch_masked_loop`` (several inputs, masks, per-step outputs)."""

    name = "torch"

    def __init__(self):
        self._loop = None

    @property
    def data_parallel(self):
        """Whether the chosen loop trains with DDP on several workers (only the compiled-graph loop does)."""
        return bool(getattr(self._loop, "data_parallel", False))

    @property
    def captured(self):
        """The last run's :class:`kzoo.engine.torch_cuda_graph.CapturedStep` (``mode``, ``reason``), if any."""
        return getattr(self._loop, "captured", None)

    def supports(self, model, config):
        from kzoo.engine.torch_loop import FastTorchLoop
        from kzoo.engine.torch_masked_loop import MaskedTorchLoop

        # the loop that answered runs: ``supports`` records the run's settings (the shuffle's seed) on it
        fast = FastTorchLoop()
        ok, reason = fast.supports(model, config)
        if ok:
            self._loop = fast
            return True, ""
        masked = MaskedTorchLoop()
        if masked.supports(model, config)[0]:
            self._loop = masked
            return True, ""
        return False, reason

    def run(self, model, x, y, **kwargs):
        if self._loop is None and not self.supports(model, None)[0]:
            raise ValueError(f"The torch engine cannot train {model.name}.")
        from kzoo.engine.torch_masked_loop import MaskedTorchLoop

        if y is None and isinstance(self._loop, MaskedTorchLoop):  # a streamed PyDataset: fit streams it
            return FitLoop().run(model, x, y, **kwargs)
        return self._loop.run(model, x, y, **kwargs)


# engine name -> {backend: loop class}; "fit" serves every backend
LOOPS = {"torch": {"torch": TorchLoop}, "xla": {"tensorflow": XlaFitLoop}, "tf": {"tensorflow": TensorflowLoop},
         "fit": {"*": FitLoop}}


def choose_loop(engine, backend, model, config, notify=print):
    """The loop for ``--engine`` on ``backend``; "auto" prefers a backend-specific loop, then fit."""
    candidates = [engine] if engine != "auto" else [name for name in LOOPS if name != "fit"] + ["fit"]
    for name in candidates:
        loops = LOOPS.get(name, {})
        cls = loops.get(backend) or loops.get("*")
        if cls is None:
            if engine != "auto":
                notify(f"--engine {name} is not available on the {backend} backend; using fit.")
            continue
        loop = cls(forced=True) if cls is XlaFitLoop and engine == name else cls()
        ok, reason = loop.supports(model, config)
        if ok:
            return loop
        if reason and (engine != "auto" or name != "fit"):  # an empty reason: not applicable here, silently
            notify(f"The {name} engine cannot train {model.name} ({reason}); using fit.")
    return FitLoop()


def seed_everything(seed):
    """Seed Python, NumPy, the backend and Keras's global seed generator.

    ``keras.utils.set_random_seed`` also imports TensorFlow whenever it is installed (to seed ``tf.data``),
    which costs seconds and hundreds of MB on the torch and jax backends; it is used on tensorflow only.
    """
    import random

    import keras
    import numpy as np

    backend = keras.backend.backend()
    if backend == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    from kzoo.engine._keras_compat import set_global_seed

    set_global_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    if backend == "torch":
        import torch

        torch.manual_seed(seed)
