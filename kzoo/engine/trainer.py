"""``kzoo.train``: train any registered model on a registered dataset into a run folder.

A run folder holds ``config.yaml`` (the resolved configuration, versions, backend, seed, machine),
``last``/``best`` checkpoints (``.keras`` and ``.weights.h5``), ``state.json``, ``metrics.csv``,
``curves.png``, and after the final evaluation ``metrics.json`` and the task's plots (``confusion_matrix.png``
for classifiers, ``embedding.png`` for a Siamese network). How the folder is claimed, committed epoch by epoch
and recovered after a crash lives in :mod:`kzoo.engine.runs`; what differs between tasks (data, model inputs,
loss, metrics, evaluation) in :mod:`kzoo.tasks`.
"""

import dataclasses
import os
import platform
import sys
from pathlib import Path

from kzoo.engine import config as cfg
from kzoo.engine import finetune, precision
from kzoo.engine.checkpoints import DiskFullError, atomic_write, disk_full_error, is_disk_full
from kzoo.engine.distributed import is_primary
from kzoo.errors import CheckpointError, DataError, KzooError, TrainingDiverged, TrainingInterrupted


def environment():
    """Versions and machine, recorded in every run's config."""
    import importlib.metadata

    import keras

    versions = {}
    for package in ("kzoo", "keras", "torch", "tensorflow", "tensorflow-cpu", "jax", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"backend": keras.backend.backend(), "versions": versions, "python": sys.version.split()[0],
            "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                        "cpu_count": os.cpu_count(), "accelerator": accelerator()}}


def accelerator():
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "torch":
            import torch

            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return gpus[0].name if gpus else "cpu"
        if backend == "jax":
            import jax

            return str(jax.devices()[0])
    except Exception:  # the record is informative only
        return "unknown"
    return "cpu"


def make_optimizer(config, steps_per_epoch, world_size=1):
    """The optimizer of ``config``; with ``scale_lr``, the learning rate times ``world_size`` (linear scaling).

    ``schedule``: constant, cosine (to 0 at the last step) or step (x0.1 at 50% and 75% of the steps);
    ``warmup_epochs`` (in steps) raises it linearly from 0 to ``lr`` first (Keras's ``CosineDecay`` warmup, so
    checkpoints hold a built-in, serializable schedule). ``weight_decay``: Keras's decoupled decay
    (``p -= lr * wd * p`` every step). ``ema``: Keras's moving average of the weights (``use_ema``); the
    callbacks swap it in for validation and ``best`` (:func:`kzoo.engine.callbacks.ema_weights_in`).
    """
    import keras

    lr = config.lr * world_size if world_size > 1 and config.scale_lr else config.lr
    schedule = lr
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(total - 1, round(config.warmup_epochs * steps_per_epoch)) if config.warmup_epochs else 0
    if warmup:  # alpha=1: a constant lr after the warmup (the cosine factor is (1 - alpha) * cos + alpha)
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=total - warmup, warmup_target=lr, warmup_steps=warmup,
            alpha=0.0 if config.schedule == "cosine" else 1.0)
    elif config.schedule == "cosine":
        schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=total)
    elif config.schedule == "step":  # x0.1 at 50% and 75% of training
        bounds = [int(total * 0.5), int(total * 0.75)]
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(bounds, [lr, lr * 0.1, lr * 0.01])
    common = {"learning_rate": schedule}
    if config.clipnorm:
        common["clipnorm"] = config.clipnorm
    if config.weight_decay and config.optimizer != "adamw":
        common["weight_decay"] = config.weight_decay
    if config.ema:
        common.update(use_ema=True, ema_momentum=config.ema)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(**common)
    if config.optimizer == "momentum":
        return keras.optimizers.SGD(momentum=0.9, nesterov=True, **common)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(**common)
    return keras.optimizers.AdamW(weight_decay=config.weight_decay or 0.004, **common)


def make_loss(task, config):
    """The task's loss of ``config.loss``, its targets smoothed by ``config.label_smoothing``."""
    from kzoo.errors import OptionError
    from kzoo.layers import with_label_smoothing

    try:
        return with_label_smoothing(task.loss(config.loss), config.label_smoothing)
    except OptionError:
        raise
    except ValueError as error:
        raise OptionError(f"--label-smoothing with the {task.name} task: {error}") from None


def apply_kernel_regularization(model, l1, l2):
    """The notes' ``Loss = Original Loss + lambda * Regularization``: L1/L2 on every kernel."""
    import keras

    if not (l1 or l2):
        return 0
    count = 0
    for variable in model.trainable_weights:
        if variable.path.endswith("kernel") or variable.path.endswith("/kernel"):
            variable.regularizer = keras.regularizers.L1L2(l1=l1, l2=l2)
            count += 1
    return count


def augmentation(input_shape, data_name):
    """Random shifts for every image dataset, plus horizontal flips where mirror images are still valid."""
    from keras import layers

    steps = [layers.RandomTranslation(0.1, 0.1, fill_mode="constant", name="augment_shift")]
    if data_name not in ("mnist", "mnist_embedded"):  # a mirrored digit is not the same digit
        steps.insert(0, layers.RandomFlip("horizontal", name="augment_flip"))
    return steps


def with_augmentation(model, steps):
    import keras

    inputs = keras.Input(shape=model.inputs[0].shape[1:], name="image")
    x = inputs
    for layer in steps:
        x = layer(x)
    return keras.Model(inputs, model(x), name=model.name)


def _console(quiet):
    from rich.console import Console

    return Console(stderr=True, quiet=quiet, soft_wrap=True)


def _save_config(run_dir, config, prepared, env, task):
    if not is_primary():
        return
    from kzoo.engine.runs import write_run_config

    data = cfg.as_dict(config)
    data.update({"class_names": prepared.class_names, "input_shape": list(prepared.input_shape),
                 "num_classes": prepared.num_classes, "task_kind": task.name, **prepared.extra, **env})
    write_run_config(run_dir, data)


def train(model=None, data=None, *, config_file=None, resume=None, **kwargs):
    """Train a registered model (``kzoo train``); returns a dict with the run folder and final metrics.

    Args:
        model: registered model name (may come from ``config_file`` or the resumed run instead).
        data: registered dataset name, or a path: a folder of images for a classifier; a ``text<TAB>label``
            file (or a folder of class subfolders of ``.txt`` files) for a text classifier, a
            ``source<TAB>target`` file for a translator, a ``.txt`` file for a language model. Default: the model
            recipe's, else the embedded MNIST.
        config_file: YAML with any train option; explicit keyword arguments win.
        resume: a run folder to continue from its last completed epoch (``last``, as ``state.json`` records
            it), optimizer state included; a folder without a completed epoch starts again from epoch 1.
        **kwargs: any :class:`kzoo.engine.config.TrainConfig` field (epochs, batch_size, lr, optimizer, ...);
            ``options`` holds model options. The recipe's regularisers and schedule: ``weight_decay`` (Keras's
            decoupled decay), ``schedule`` (constant, cosine, step), ``warmup_epochs`` (linear from 0 to ``lr``
            first), ``label_smoothing`` (cross-entropy losses), ``ema`` (a moving average of the weights, used
            by validation, ``best`` and the final test); see :func:`make_optimizer` and :func:`make_loss`.

    Raises:
        TrainingInterrupted: on Ctrl-C, after saving ``interrupted.*`` (``last`` stays the last completed epoch).
        TrainingDiverged: when the loss becomes NaN (the last good checkpoint is kept).
        DiskFullError: a file did not fit on the disk (the last good checkpoint is kept).
    """
    where = {}
    try:
        return _train(model, data, config_file=config_file, resume=resume, where=where, **kwargs)
    except (DiskFullError, OSError) as exc:
        if isinstance(exc, OSError) and not is_disk_full(exc):
            raise
        error = exc if isinstance(exc, DiskFullError) else disk_full_error(exc.filename or where.get("run_dir", "."))
        run_dir, hint = where.get("run_dir"), ""
        if run_dir:
            from kzoo.engine.runs import read_state

            done = read_state(run_dir)["epochs_done"]
            kept = f"{os.path.join(run_dir, 'last.keras')} (epoch {done}) is kept" if done else f"no epoch of {run_dir} was saved"
            hint = f" {kept}; free some space and continue with: kzoo train --resume {run_dir}"
        raise DiskFullError(f"{error}{hint}") from None
    finally:  # --mixed-precision set Keras's global dtype policy for this run only
        if "dtype_policy" in where:
            precision.restore_policy(where["dtype_policy"])
        if "process" in where:  # process.json: how training ended (it finished: released already)
            where.pop("process").release(sys.exc_info()[1])


def _train(model, data, *, config_file, resume, where, **kwargs):
    from kzoo.backend import set_backend

    unknown = sorted(set(kwargs) - cfg.FIELDS)
    if unknown:
        import difflib

        hints = [f"{k} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(k, cfg.FIELDS, 1)) else k
                 for k in unknown]
        raise KzooError(f"train() got unknown option(s): {', '.join(hints)}. Model options go in options={{...}}.")
    state = None
    if resume:
        state, stored = _load_resume(resume)
        explicit = {k: v for k, v in kwargs.items() if v is not None and k != "options"}
        stored.update(explicit)
        config = cfg.resolve(stored, config_file=config_file)
        run_dir = resume
    else:
        explicit = dict(kwargs, model=model, data=data)
        model_name = model or (cfg.load_yaml(config_file).get("model") if config_file else None)
        if not model_name:
            raise KzooError("Name a model to train, e.g. `kzoo train lenet5`.")
        from kzoo.tasks import recipe_for
        from kzoo.registry import model_info

        layer = cfg.load_yaml(config_file) if config_file else {}
        recipe = recipe_for(model_info(model_name), kwargs.get("task") or layer.get("task"),
                            {**(layer.get("options") or {}), **(kwargs.get("options") or {})},
                            data=data or layer.get("data"))
        config = cfg.resolve(explicit, recipe=recipe, config_file=config_file)
        run_dir = None

    backend = set_backend(config.backend)
    config.backend = backend
    import kzoo.backend
    from kzoo.engine import distributed

    plan = distributed.parse_devices(config.devices, backend, config.batch_size)
    distributed.check_sync_bn(plan, config.sync_bn)
    configure_devices = getattr(kzoo.backend, "configure_devices", None)  # tensorflow/jax: logical CPU devices
    if configure_devices is not None:
        configure_devices(backend, plan.count)
    threads = None  # DDP workers share the cores out themselves unless --threads says otherwise
    if not plan.distributed or config.threads is not None:
        threads = kzoo.backend.use_threads(backend, config.threads)
    if backend == "torch" and plan.distributed and not distributed.in_worker():
        from kzoo.engine.distributed.launch import launch_training

        return launch_training(train, plan, model, data, config_file=config_file, resume=resume, **kwargs)
    distributed.start_worker(plan)
    primary = is_primary()
    console = _console(config.quiet or not primary)

    import keras

    from kzoo.data import load_dataset, validate_dataset
    from kzoo.data.registry import dataset_of_path
    from kzoo.engine.archive_guard import check_weights_path
    from kzoo.engine.callbacks import EpochClock, RichProgress, RunCheckpoint, StopOnNaN, ema_validation
    from kzoo.engine.evaluation import plot_curves, write_json
    from kzoo.engine.forward import inference_forward
    from kzoo.engine.loops import seed_everything
    from kzoo.engine.runs import claim_output_dir, claim_run_dir
    from kzoo.tasks import task_for
    from kzoo.memory import check_training_fits, out_of_memory_as_error
    from kzoo.factory import create_model
    from kzoo.registry import model_info, resolve_model_options

    info = model_info(config.model)
    _, _, config.options = resolve_model_options(config.model, config.options or {})
    task = task_for(info, config)
    given_data = config.data
    if run_dir is None:  # a resumed run has its files recorded already
        config.data, config.data_dir = dataset_of_path(config.data, config.data_dir, reader=task.file_dataset)
    seed_everything(config.seed)
    if config.mixed_precision:
        where["dtype_policy"] = precision.use_mixed_policy(backend)

    folder = _open_folder(config, run_dir)
    dataset = folder or load_dataset(config.data, data_dir=config.data_dir)
    prepared = task.prepare(dataset, config)
    if folder is None and dataset.task == "image_classification":
        validate_dataset(dataset)

    scope = distributed.build_scope(plan, config.sync_bn)  # entered again for every compile
    with scope:
        if state is not None and state["epochs_done"] > 0:
            from kzoo.engine.checkpoints import load_model

            net = load_model(os.path.join(run_dir, "last.keras"), compile=True)
        else:
            net = create_model(config.model, weights=config.weights, **task.build_kwargs(prepared, config))
            if config.freeze_backbone:
                finetune.freeze_backbone(net)
            if config.augment and len(prepared.input_shape) == 3 and folder is None:  # folders augment in workers
                net = with_augmentation(net, augmentation(prepared.input_shape, config.data))
        apply_kernel_regularization(net, config.l1, config.l2)
        if config.sync_bn and plan.distributed and backend == "tensorflow":  # jax's moments are global already
            from kzoo.engine.distributed.tf_mirrored import synchronize_batch_norm

            synchronize_batch_norm(net)

    data = task.fit_data(prepared, config, initial_epoch=state["epochs_done"] if state else 0)
    n_train = data.samples
    if n_train == 0:
        cut = f"--limit {config.limit} keeps {config.limit} and " if config.limit else ""
        raise DataError(f"No training samples are left: {cut}--val-split {config.val_split} holds at least one "
                        f"out for validation. Use a larger --limit or --val-split 0.")
    check_training_fits(net, config.batch_size)
    steps = -(-n_train // config.batch_size)
    if getattr(net, "optimizer", None) is None:
        with scope:
            net.compile(optimizer=make_optimizer(config, steps, plan.count), loss=make_loss(task, config),
                        metrics=task.metrics(config.loss))
    notify = lambda m: console.print(f"[yellow]{m}[/yellow]")  # noqa: E731
    loop = _choose_loop(config, backend, net, plan, notify)

    if run_dir is None and primary:
        run_dir = (claim_output_dir(config.output) if config.output  # --data reviews.tsv: runs/bilstm-reviews-1
                   else claim_run_dir(config.model, folder.name if folder else Path(given_data).stem))
        config.output = run_dir
    if primary and plan.distributed:
        from kzoo.engine.distributed.launch import record_run_dir

        record_run_dir(run_dir)
    where["run_dir"] = run_dir
    if folder is not None and primary:
        from kzoo.data.image_folder import write_file_lists

        write_file_lists(folder, run_dir)
    env = {**environment(), "world_size": plan.count, "engine_used": loop.name,
           "dtype_policy": keras.config.dtype_policy().name, "threads_used": threads}
    _save_config(run_dir, config, prepared, env, task)

    has_val = data.validation is not None
    monitor = task.monitor if has_val else task.monitor.replace("val_", "")
    checkpoint = RunCheckpoint(run_dir, monitor=monitor, mode="min" if "loss" in monitor or "perplexity" in monitor
                               else "max", state=state)
    nan_guard = StopOnNaN()
    # the other workers keep only the callbacks that decide when to stop; their logs are global, so they agree
    callbacks = [EpochClock(n_train), nan_guard, checkpoint] if primary else [nan_guard]
    if config.ema:  # validation scores the moving averages of the weights, as best.keras records them
        callbacks.insert(0, ema_validation())
    if config.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss" if has_val else "loss",
                                                       patience=config.early_stopping, restore_best_weights=False))
    if not config.quiet and primary:
        callbacks.insert(1, RichProgress(config.epochs, steps, config.batch_size, console=console))

    initial_epoch = state["epochs_done"] if state else 0
    if initial_epoch >= config.epochs:
        raise KzooError(f"{run_dir} already trained {initial_epoch} epochs; pass --epochs N with N > "
                        f"{initial_epoch} to train further.")
    if primary:  # process.json: locked while this process trains the folder (kzoo runs: running)
        from kzoo.engine.run_process import hold_run

        where["process"] = hold_run(run_dir)
    devices = (f" on {plan.count} {'simulated ' if plan.simulated else ''}devices (global batch "
               f"{config.batch_size})" if plan.distributed else "")
    source = f"{config.data_dir} (as {config.data})" if config.data_dir else config.data
    console.print(f"Training [bold]{config.model}[/bold] on {source} ({n_train:,} samples) with {backend} "
                  f"({loop.name} engine){devices} -> {run_dir}", highlight=False)
    if (recorded := prepared.extra.get("data_folder")) and not config.quiet:
        console.print(_cache_line(config.cache, recorded), highlight=False)
    try:
        with out_of_memory_as_error(f"Training {config.model} with --batch-size {config.batch_size}"):
            for start, end, unfrozen in finetune.phases(config, initial_epoch):
                if unfrozen and finetune.is_frozen(net):  # --unfreeze-at: every layer, at lr x 0.1
                    finetune.unfreeze(net)
                    tuned = dataclasses.replace(config, lr=config.lr * finetune.UNFROZEN_LR_FACTOR)
                    with scope:
                        net.compile(optimizer=make_optimizer(tuned, steps, plan.count), loss=make_loss(task, config),
                                    metrics=task.metrics(config.loss))
                    loop = _choose_loop(config, backend, net, plan, notify)
                    console.print(f"Epoch {start + 1}: every layer trains from now on, lr {tuned.lr:g}",
                                  highlight=False)
                with scope:  # jax shards each batch as fit draws it: the distribution must be set while it runs
                    loop.run(net, data.x, data.y, validation_data=data.validation, epochs=end,
                             initial_epoch=start, batch_size=config.batch_size, callbacks=callbacks)
    except KeyboardInterrupt:
        if not primary:
            raise
        for callback in callbacks:
            if isinstance(callback, RichProgress):
                callback.on_train_end()
        checkpoint.set_model(net)
        try:
            checkpoint.save_interrupted()
            saved = "interrupted.keras holds the weights as they were; "
        except DiskFullError as exc:
            saved = f"interrupted.keras was not written ({exc}); "
        done = checkpoint.state.get("epochs_done", 0)
        raise TrainingInterrupted(
            f"Interrupted during epoch {done + 1}. {saved}last.keras is the end of epoch {done}. Continue from "
            f"there with: kzoo train --resume {run_dir}"
        ) from None
    if not primary:  # rank 0 alone plots, evaluates once and reports
        return {"run_dir": None, "rank": distributed.rank()}
    metrics_csv = os.path.join(run_dir, "metrics.csv")
    if os.path.exists(metrics_csv):
        atomic_write(os.path.join(run_dir, "curves.png"), lambda tmp: plot_curves(metrics_csv, tmp))
    if nan_guard.where is not None:
        epoch, batch = nan_guard.where
        raise TrainingDiverged(
            f"The loss became NaN at epoch {epoch}, batch {batch}; training stopped. The last good checkpoint "
            f"({checkpoint.state.get('epochs_done', 0)} epochs) is kept in {run_dir}. Try a lower --lr "
            f"(now {config.lr}) or --clipnorm 1.0."
        )

    best = os.path.join(run_dir, "best.weights.h5")
    if os.path.exists(best):
        check_weights_path(best)  # a resumed folder may hold a file kzoo did not write
        net.load_weights(best)
    with scope:
        report = task.evaluate(net, prepared.x_test, prepared.y_test, forward=inference_forward,
                               class_names=prepared.class_names, loss=config.loss)
    if folder is not None:  # files found unreadable while streaming join those of the scan in the record
        streams = (data.x, data.validation, prepared.x_test)
        skipped = set(folder.skipped).union(*(b.skipped for b in streams if b is not None))
        prepared.extra["data_folder"]["skipped_images"] = len(skipped)
        _save_config(run_dir, config, prepared, env, task)
    report.update({"model": config.model, "data": config.data, "split": prepared.test_split,
                   "best_epoch": checkpoint.state.get("best_epoch"), "epochs_done": checkpoint.state.get("epochs_done")})
    atomic_write(os.path.join(run_dir, "metrics.json"), lambda tmp: write_json(report, tmp))
    task.save_plots(report, run_dir)
    from kzoo.engine.model_card import write_model_card

    write_model_card(run_dir, net, dataset, prepared)
    where.pop("process").release()
    headline = "  ".join(f"{k} {report[k]:.4f}" for k in ("accuracy", "loss", "perplexity", "pair_accuracy", "bleu",
                                                          "exact_match") if k in report)
    console.print(f"[bold]{prepared.test_split}[/bold]  {headline}  (best epoch {report['best_epoch']}) -> {run_dir}",
                  highlight=False)
    return {"run_dir": run_dir, **report}


def _choose_loop(config, backend, net, plan, notify):
    """The training loop; several devices on torch need kzoo's torch engine (DDP lives there)."""
    from kzoo.engine.loops import choose_loop

    loop = choose_loop(config.engine, backend, net, config, notify=notify)
    if plan.distributed and backend == "torch" and not getattr(loop, "data_parallel", False):
        from kzoo.engine.torch_loop import why_not

        reason = why_not(net) if config.engine in ("auto", "torch") else f"--engine {config.engine} was asked for"
        reason = reason or "it trains with the masked loop, which runs on one device"
        raise KzooError(f"--devices {plan.count} on torch trains with kzoo's torch engine (DDP), which cannot "
                        f"train {config.model}: {reason}. Train it on one device, or with --backend tensorflow "
                        f"or jax.")
    return loop


def _open_folder(config, run_dir):
    """The :class:`~kzoo.data.image_folder.ImageFolder` of ``--data PATH`` (a resumed run: its recorded files)."""
    from kzoo.data import image_folder
    from kzoo.data.registry import looks_like_path

    if not looks_like_path(config.data):
        return None
    record = image_folder.load_file_lists(run_dir) if run_dir else None
    if record is not None:
        return image_folder.read_file_lists(record)
    return image_folder.open_image_folder(config.data, val_split=config.val_split, test_split=config.test_split,
                                          seed=config.seed, image_size=config.image_size,
                                          channels=config.channels, strict=config.strict_data)


def _load_resume(run_dir):
    """A run folder brought back to its last committed epoch (:func:`kzoo.engine.runs.recover`) and its config."""
    from kzoo.engine.runs import read_run_config, recover

    if not os.path.isdir(run_dir):
        raise CheckpointError(f"No such run folder: {run_dir}")
    from kzoo.engine.distributed import in_worker
    from kzoo.engine.run_process import refuse_if_running

    if not in_worker():  # recovering a folder another process writes would break its commits (a worker: rank 0 checks)
        refuse_if_running(run_dir)
    stored = read_run_config(run_dir)
    if not isinstance(stored, dict):
        raise CheckpointError(f"{run_dir} cannot be resumed: it has no config.yaml (the run stopped before it "
                              f"started); train it again.")
    state = recover(run_dir)
    if state["epochs_done"] > 0 and not os.path.exists(os.path.join(run_dir, "last.keras")):
        raise CheckpointError(f"{run_dir} cannot be resumed: it has no last.keras.")
    # the devices belong to the machine, not the run: a run resumes on any number of them (--devices)
    stored = {k: v for k, v in stored.items() if k in cfg.FIELDS and k != "devices"}
    return state, stored


def _cache_line(requested, recorded):
    """What happens to an image folder's decoded images: ``Images: 7.5 MB decoded, cached in RAM after the first
    epoch``."""
    kind, size = recorded["cache"], recorded["decoded_mb"]
    where = {"ram": "cached in RAM after the first epoch", "disk": "cached on disk ($KZOO_CACHE)",
             "none": "decoded again every epoch (streamed)"}[kind]
    hint = ""
    if requested == "auto" and kind == "none":
        hint = " (--cache auto: more than the RAM budget, $KZOO_RAM_CACHE_MB)"
    return f"Images: {size:,} MB decoded, {where}{hint}"
