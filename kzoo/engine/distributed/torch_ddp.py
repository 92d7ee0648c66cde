"""One torch worker of a data-parallel run: its process group, DDP over the compiled graph, global metrics.

Each worker holds a whole replica of the Keras model. :func:`wrap` hands the Keras variables' torch Parameters to
``torch.nn.parallel.DistributedDataParallel`` through a small ``nn.Module`` whose forward is the compiled graph
(:mod:`kzoo.engine.torch_graph`): DDP broadcasts rank 0's weights once, then averages the gradients in buckets
while ``backward`` runs, so every rank applies the same update with its own Keras optimizer. Batch-norm moving
statistics are not Parameters: each replica keeps its own (per-device statistics, as ``torch.nn.BatchNorm2d``
under DDP without ``SyncBatchNorm``). The data are sharded by ``torch.utils.data.DistributedSampler`` in
:mod:`kzoo.engine.torch_feed`; the loop's logs are summed over the workers (:func:`global_sum`) and validation,
run on rank 0 alone, is broadcast (:func:`share`), so callbacks decide the same on every rank.
"""

import atexit
import datetime
import os
import warnings

import torch
import torch.distributed as dist

from kzoo.errors import OptionError

# A collective that waits longer than this fails instead of hanging (a peer that is gone for good). The launcher
# stops the workers much sooner when a process dies; this bounds what it cannot see (a stuck peer, another node).
TIMEOUT_S = int(os.environ.get("KZOO_DIST_TIMEOUT", "600"))


def start(plan):
    """Join the process group ``torch.distributed.run`` set up: nccl on CUDA, gloo on CPU."""
    if dist.is_initialized():
        return
    local = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)  # before Keras creates a tensor: "cuda" is then this worker's GPU
        backend = "nccl"
    else:
        backend = "gloo"
        if "OMP_NUM_THREADS" not in os.environ:  # share the cores out between the simulated devices
            per_node = int(os.environ.get("LOCAL_WORLD_SIZE", plan.count))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // per_node))
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=TIMEOUT_S))
    atexit.register(stop)


def stop():
    if dist.is_initialized():
        dist.destroy_process_group()


def world():
    """``(rank, world_size)`` of an active data-parallel run, else ``None``."""
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return None
    return dist.get_rank(), dist.get_world_size()


class Replica(torch.nn.Module):
    """The compiled graph as an ``nn.Module`` whose parameters are the Keras model's trainable variables."""

    def __init__(self, graph, params):
        super().__init__()
        self.graph = graph
        self.weights = torch.nn.ParameterList(params)

    def forward(self, x, training):
        return self.graph.forward(x, training)


def wrap(graph, params, device):
    """``DistributedDataParallel`` over the graph; call it as ``graph.forward``.

    The conv kernels must already have their final memory layout (``restride``): DDP's buckets follow the
    Parameters as they are when it is built.
    """
    from torch.nn.parallel import DistributedDataParallel

    # restride gives kernels with a size-1 dimension (LeNet's 1-channel input) strides that autograd's grads
    # need not copy; DDP then copies such grads into its buckets, which is correct (and cheap for those kernels)
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(Replica(graph, params), device_ids=ids)  # no buffers: BN stats stay per replica


def global_sum(tensor):
    """``tensor`` summed over the workers, in place (the loop's loss x samples, correct, samples)."""
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def share(primary_computes):
    """``primary_computes()`` run on rank 0 alone and its result given to every worker."""
    box = [primary_computes() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def check_sync_bn(plan):
    """``--sync-bn``: torch's ``SyncBatchNorm`` needs CUDA (NCCL); kzoo's torch engine does not use it yet."""
    if not torch.cuda.is_available():
        raise OptionError("--sync-bn: torch synchronizes batch norm (SyncBatchNorm) on CUDA GPUs only; on this "
                          "machine each simulated device keeps its own batch-norm statistics. Leave --sync-bn out.")
    raise OptionError("--sync-bn: kzoo's torch engine keeps per-device batch-norm statistics; synchronized batch "
                      "norm is not wired into its compiled graph yet. Leave --sync-bn out.")
