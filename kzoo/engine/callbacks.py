"""Keras callbacks of a training run: progress display, atomic checkpoints, NaN guard, EMA weights."""

import contextlib
import math
import time

import keras

from kzoo.engine.runs import commit_epoch, save_interrupted


def start_callbacks(model, callbacks, *, epochs, steps):
    """``(callback_list, history)`` as ``fit`` sets them up, for a hand-written loop; ``on_train_begin`` called."""
    history = keras.callbacks.History()
    cbs = keras.callbacks.CallbackList(list(callbacks) + [history], model=model, epochs=epochs, steps=steps, verbose=0)
    model.stop_training = False
    cbs.on_train_begin()
    return cbs, history


def uses_ema(model):
    """Whether ``model``'s optimizer keeps a moving average of the weights (``--ema``)."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's
    return bool(getattr(optimizer, "use_ema", False)) and getattr(optimizer, "built", False)


@contextlib.contextmanager
def ema_weights_in(model):
    """The optimizer's moving averages of the weights in ``model`` for the ``with`` block, then the trained
    weights back (the averages keep their values). Nothing happens without ``use_ema``."""
    if not uses_ema(model):
        yield
        return
    from kzoo.engine._keras_compat import swap_ema_weights

    swap_ema_weights(model)
    try:
        yield
    finally:
        swap_ema_weights(model)


def ema_validation():
    """The callback that validates with the moving averages of the weights (``--ema``): swapped in at
    ``on_test_begin``, out at ``on_test_end`` (``fit`` calls them around validation, and so does the torch
    engine)."""
    return keras.callbacks.SwapEMAWeights(swap_on_epoch=False)


class EpochClock(keras.callbacks.Callback):
    """Adds ``epoch_time``, ``samples_per_s`` and ``lr`` to the epoch logs (callbacks after it see them)."""

    def __init__(self, samples_per_epoch):
        super().__init__()
        self.samples_per_epoch = samples_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        elapsed = time.perf_counter() - self._start
        logs["epoch_time"] = round(elapsed, 3)
        logs["samples_per_s"] = round(self.samples_per_epoch / elapsed, 1) if elapsed else 0.0
        optimizer = self.model.optimizer
        lr = optimizer.learning_rate
        try:
            logs["lr"] = float(keras.ops.convert_to_numpy(lr))
        except Exception:  # a schedule object: evaluate it at the current step
            logs["lr"] = float(keras.ops.convert_to_numpy(lr(optimizer.iterations)))


class RichProgress(keras.callbacks.Callback):
    """A progress bar per epoch (ETA, samples/s, loss, accuracy) and one summary line per epoch.

    The bar is refreshed at most ``refresh_per_second`` times, so reporting adds no per-batch work beyond
    what Keras already does.
    """

    def __init__(self, epochs, steps, batch_size, console=None, metric_names=("loss", "accuracy", "perplexity")):
        super().__init__()
        self.epochs, self.steps, self.batch_size = epochs, steps, batch_size
        self.metric_names = metric_names
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self._progress = None

    def _start(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(bar_width=30), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"),
            console=self.console, transient=True, refresh_per_second=4,
        )
        self._progress.start()

    def on_epoch_begin(self, epoch, logs=None):
        if self._progress is None:
            self._start()
        self._task = self._progress.add_task(f"epoch {epoch + 1}/{self.epochs}", total=self.steps,
                                             rate="", metrics="")
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        done = batch + 1
        elapsed = time.perf_counter() - self._t0
        rate = f"{done * self.batch_size / elapsed:,.0f} samples/s" if elapsed > 0 else ""
        shown = "  ".join(f"{k} {logs[k]:.4f}" for k in self.metric_names if logs and k in logs)
        self._progress.update(self._task, completed=done, rate=rate, metrics=shown)

    def on_epoch_end(self, epoch, logs=None):
        self._progress.remove_task(self._task)
        logs = logs or {}
        parts = [f"epoch {epoch + 1}/{self.epochs}"]
        for key in ("loss", "accuracy", "perplexity", "val_loss", "val_accuracy", "val_perplexity"):
            if key in logs:
                parts.append(f"{key} {logs[key]:.4f}")
        if "epoch_time" in logs:
            parts.append(f"{logs['epoch_time']:.1f}s ({logs['samples_per_s']:,.0f} samples/s)")
        self.console.print("  ".join(parts), highlight=False)

    def on_train_end(self, logs=None):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class RunCheckpoint(keras.callbacks.Callback):
    """After each good epoch: ``last``, ``best`` on improvement (the EMA weights with ``--ema``), the ``metrics.csv`` row, then ``state.json``.

    :func:`kzoo.engine.runs.commit_epoch` does the writing (atomic, durable, in an order that survives a kill at
    any point). An epoch whose loss is not finite writes nothing, so the last good checkpoint survives a
    divergence. ``state`` always holds what is committed on disk.
    """

    def __init__(self, run_dir, monitor="val_accuracy", mode="max", state=None):
        super().__init__()
        self.run_dir = run_dir
        # ``best`` holds the moving averages of the weights when the optimizer keeps them (``--ema``): the
        # weights validation scored; ``last`` the trained weights, from which a resumed run continues
        self.monitor, self.mode = monitor, mode
        self.state = dict(state or {"epochs_done": 0, "best": None, "best_epoch": None})

    def _better(self, value):
        best = self.state.get("best")
        if best is None:
            return True
        return value > best if self.mode == "max" else value < best

    def save_interrupted(self):
        """Ctrl-C mid-epoch: ``interrupted.*`` holds the weights now; ``last`` stays the last completed epoch."""
        self.state = save_interrupted(self.run_dir, self.model)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        loss = logs.get("loss")
        if loss is None or not math.isfinite(loss):
            return
        value = logs.get(self.monitor, logs.get(self.monitor.replace("val_", ""), -loss if self.mode == "max" else loss))
        improved = self._better(value)
        state = dict(self.state)
        if improved:
            state.update(best=float(value), best_epoch=epoch + 1, monitor=self.monitor)
        best_weights = (lambda: ema_weights_in(self.model)) if uses_ema(self.model) else None
        self.state = commit_epoch(self.run_dir, self.model, state, {"epoch": epoch, **logs}, improved,
                                  best_weights=best_weights)


class StopOnNaN(keras.callbacks.Callback):
    """Stop as soon as the training loss is NaN or infinite and remember where."""

    def __init__(self):
        super().__init__()
        self.where = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.where = (self._epoch + 1, batch + 1)
            self.model.stop_training = True
