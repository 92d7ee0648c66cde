"""Data-parallel training on several devices: which devices (``--devices``), which process, which scope.

One place decides what ``--devices N|all|0,1,...`` means on the chosen backend and checks it before anything
trains: a :class:`DevicePlan` (the devices, and whether they are simulated on a CPU-only machine). Each backend
trains the plan with its framework's own data parallelism, never a home-made one:

- torch: one process per device, launched by ``torch.distributed.run`` (:mod:`.launch`, also ``torchrun``), the
  gradients averaged by ``DistributedDataParallel`` inside kzoo's torch engine (:mod:`.torch_ddp`);
- tensorflow: ``tf.distribute.MirroredStrategy`` in one process (:mod:`.tf_mirrored`);
- jax: ``keras.distribution.DataParallel`` in one process (:mod:`.jax_data_parallel`).

In every case ``--batch-size`` is the global batch, split evenly over the devices, and only the primary process
(rank 0) writes the run folder and prints.
"""

import contextlib
import dataclasses
import importlib
import importlib.metadata
import os

from kzoo.errors import OptionError

# torch.distributed.run sets these in every worker it starts (torchrun, or kzoo's own launch)
_WORKER_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclasses.dataclass(frozen=True)
class DevicePlan:
    """The devices one run trains on.

    Attributes:
        backend: the Keras backend.
        count: how many devices (data-parallel replicas).
        ids: the accelerator ids (``--devices 0,2``), ``None`` for "the first ``count``".
        simulated: the machine has no accelerator; the devices are CPU processes (torch) or logical CPU devices.
    """

    backend: str
    count: int
    ids: tuple = None
    simulated: bool = False

    @property
    def distributed(self):
        return self.count > 1


def in_worker():
    """True inside a process started by ``torch.distributed.run`` (kzoo's launcher or ``torchrun``)."""
    return all(name in os.environ for name in _WORKER_ENV)


def world():
    """``(rank, world_size, local_rank)`` of this process; ``(0, 1, 0)`` outside a torch worker."""
    if not in_worker():
        return 0, 1, 0
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])


def rank():
    return world()[0]


def is_primary():
    """Whether this process writes the run folder and prints (rank 0; always true in one process)."""
    return rank() == 0


def accelerator_count(backend):
    """GPUs the backend can use here, or ``None`` where counting would start the backend too early (jax)."""
    if backend == "torch":
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    if backend == "tensorflow":
        import tensorflow as tf  # listing physical devices leaves the logical ones configurable

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":  # jax.devices() would fix the host device count before configure_devices runs
        plugins = [d.metadata["Name"] for d in importlib.metadata.distributions()
                   if (d.metadata["Name"] or "").lower().startswith(("jax-cuda", "jax_cuda", "jax-rocm"))]
        return None if plugins else 0
    return 0


def parse_devices(spec, backend, batch_size=None):
    """The :class:`DevicePlan` for ``--devices`` (``N``, ``all`` or ``0,1,...``) on ``backend``.

    Inside a torch worker the launcher has fixed the world size; ``spec`` must then agree with the local
    process count (or be absent). On a machine without accelerators ``N`` simulates ``N`` CPU devices, at most
    one per core. ``batch_size``, when given, must split evenly over the devices.

    Raises:
        OptionError: ``0`` devices, more devices than exist, unknown ids, a batch that does not split.
    """
    text = "1" if spec is None else str(spec).strip().lower()
    if in_worker():
        _, size, _ = world()
        local = int(os.environ.get("LOCAL_WORLD_SIZE", size))
        if spec is not None and text not in ("all", str(local), str(size)):
            raise OptionError(f"--devices {spec} disagrees with the {local} processes per node that torchrun "
                              f"started; leave --devices out under torchrun. Received: devices={spec!r}.")
        plan = DevicePlan(backend, size, simulated=accelerator_count(backend) == 0)
        _check_batch(plan, batch_size)
        return plan
    available = accelerator_count(backend)
    ids = None
    if text == "all":
        count = available or 1
    elif "," in text:  # ids; a single id is written "2,"
        ids = _parse_ids(text)
        count = len(ids)
    elif text.isdigit():
        count = int(text)
    else:
        raise OptionError(f"--devices takes a number of devices, 'all', or device ids such as 0,1. "
                          f"Received: devices={spec!r}.")
    if count < 1:
        raise OptionError(f"--devices needs at least one device. Received: devices={spec!r}.")
    if available == 0:
        if ids is not None:
            raise OptionError(f"--devices {spec} names GPU ids, but this machine has no GPU for the {backend} "
                              f"backend; --devices N simulates N devices on the CPU.")
        cores = os.cpu_count() or 1
        if count > cores:
            raise OptionError(f"--devices {count}: this machine has no GPU, and simulates at most one device per "
                              f"CPU core ({cores}). Received: devices={spec!r}.")
        plan = DevicePlan(backend, count, simulated=count > 1)
    else:
        if available is not None:
            if ids is not None and max(ids) >= available:
                raise OptionError(f"--devices {spec}: device {max(ids)} does not exist; the {backend} backend sees "
                                  f"{available} GPU(s), ids 0-{available - 1}.")
            if count > available:
                raise OptionError(f"--devices {count}: the {backend} backend sees only {available} GPU(s) here. "
                                  f"Received: devices={spec!r}.")
        plan = DevicePlan(backend, count, ids=tuple(ids) if ids else None)
    _check_batch(plan, batch_size)
    return plan


def _parse_ids(text):
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise OptionError(f"--devices ids must be integers such as 0,1. Received: devices={text!r}.") from None
    if not ids or min(ids) < 0 or len(set(ids)) != len(ids):
        raise OptionError(f"--devices ids must be distinct integers >= 0, such as 0,1. Received: devices={text!r}.")
    return ids


def _check_batch(plan, batch_size):
    if batch_size is not None and batch_size % plan.count:
        low = batch_size - batch_size % plan.count
        raise OptionError(f"--batch-size {batch_size} is the global batch and must split evenly over "
                          f"{plan.count} devices; use {low or plan.count} or {low + plan.count}.")


def start_worker(plan):
    """Inside a torch worker: join the launcher's process group (before the model is built)."""
    if plan.backend == "torch" and in_worker():
        from kzoo.engine.distributed import torch_ddp

        torch_ddp.start(plan)


def check_sync_bn(plan, sync_bn):
    """``--sync-bn`` where the backend's framework offers synchronized batch norm."""
    if not sync_bn or plan.count == 1:
        return
    if plan.backend == "torch":
        from kzoo.engine.distributed.torch_ddp import check_sync_bn as check_torch

        check_torch(plan)


def build_scope(plan, sync_bn=False):
    """The context that model creation, loading and ``compile`` run in, so variables land on every replica.

    tensorflow: a ``MirroredStrategy`` scope; jax: a ``keras.distribution.DataParallel`` distribution; torch
    (each process holds one replica, DDP averages the gradients) and a single device: nothing.
    """
    if plan.count == 1 or plan.backend == "torch":
        return contextlib.nullcontext()
    name = "kzoo.engine.distributed." + {"tensorflow": "tf_mirrored", "jax": "jax_data_parallel"}.get(plan.backend, "-")
    try:
        engine = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise OptionError(f"--devices {plan.count}: kzoo has no data-parallel engine for the {plan.backend} "
                          f"backend here; train on one device or with --backend torch.") from None
    if plan.backend == "tensorflow":
        return engine.scope(plan.count, plan.ids, sync_bn)
    return engine.scope(plan.count, plan.ids)
