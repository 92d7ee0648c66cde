"""The torch engine's batches: in-memory arrays indexed on the device, or a streamed ``keras.utils.PyDataset``.

In-memory arrays are shuffled by ``torch.utils.data.DistributedSampler``, one worker or several: a permutation
seeded by ``seed + epoch``, rank ``r`` of ``W`` taking its positions ``r, r + W, ...`` (padded, as torch pads, so
every rank has as many samples). The per-rank batches of step ``k`` thus make up the ``k``-th global batch of the
one-worker order, and a run draws the same samples on any number of workers.
"""

import keras
import torch
from torch.utils.data.distributed import DistributedSampler

def streamed(x):
    return isinstance(x, keras.utils.PyDataset)


class DeviceBatches:
    """One epoch of ``(x, y)`` device batches: arrays copied to the device once and indexed there, or a
    ``keras.utils.PyDataset`` (``y=None``) whose batches its background workers decode, copied as they come."""

    def __init__(self, x, y, batch_size, device, shuffle=True, seed=0, rank=0, replicas=1):
        self.device, self.batch_size, self.shuffle = device, batch_size, shuffle
        self.stream = self.sampler = None
        self._batches = None
        if streamed(x):
            if replicas > 1:
                x = x.shard(rank, replicas)
            self.stream = x  # the dataset orders itself, seeded, per epoch
            self.samples, self.steps = x.samples, len(x)
        else:
            self.X, self.Y = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
            if len(self.Y):
                self.sampler = DistributedSampler(range(len(self.Y)), num_replicas=replicas, rank=rank,
                                                  shuffle=shuffle, seed=seed)
            self.samples = len(self.sampler) if self.sampler is not None else 0
            self.steps = -(-self.samples // batch_size)

    def epoch(self, number=0):
        if self.stream is None:
            n = self.samples
            order = None
            if self.shuffle or (self.sampler is not None and self.sampler.num_replicas > 1):
                self.sampler.set_epoch(number)
                order = torch.tensor(list(self.sampler), device=self.device)
            for start in range(0, n, self.batch_size):
                if order is None:
                    yield self.X[start:start + self.batch_size], self.Y[start:start + self.batch_size]
                else:
                    idx = order[start:start + self.batch_size]
                    yield self.X[idx], self.Y[idx]
            return
        from kzoo.data.pipeline import iterate

        self._batches = iterate(self.stream)  # made by background threads while the step runs
        for batch in self._batches:
            yield tuple(torch.as_tensor(a).to(self.device, non_blocking=True) for a in batch[:2])
        self._batches = None

    def close(self):
        """End a streamed epoch early (the dataset still draws its next epoch's order)."""
        if self._batches is not None:
            self._batches.close()
            self._batches = None
