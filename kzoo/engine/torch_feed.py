"""The torch engine's batches: in-memory arrays indexed on the device, or a streamed ``keras.utils.PyDataset``."""

import keras
import torch

def streamed(x):
    return isinstance(x, keras.utils.PyDataset)


class DeviceBatches:
    """One epoch of ``(x, y)`` device batches: arrays copied to the device once and indexed there, or a
    ``keras.utils.PyDataset`` (``y=None``) whose batches its background workers decode, copied as they come."""

    def __init__(self, x, y, batch_size, device, shuffle=True):
        self.device, self.batch_size, self.shuffle = device, batch_size, shuffle
        self.adapter = None
        if streamed(x):
            from kzoo.engine._keras_compat import py_dataset_adapter

            self.adapter = py_dataset_adapter(x, shuffle=False)  # the dataset orders itself, seeded, per epoch
            self.samples, self.steps = x.samples, len(x)
        else:
            self.X, self.Y = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
            self.samples = len(self.Y)
            self.steps = -(-self.samples // batch_size)
        self._open = False

    def epoch(self):
        if self.adapter is None:
            n = self.samples
            order = torch.randperm(n, device=self.device) if self.shuffle else None
            for start in range(0, n, self.batch_size):
                if order is None:
                    yield self.X[start:start + self.batch_size], self.Y[start:start + self.batch_size]
                else:
                    idx = order[start:start + self.batch_size]
                    yield self.X[idx], self.Y[idx]
            return
        self.adapter.on_epoch_begin()
        self._open = True
        for batch in self.adapter.get_numpy_iterator():
            yield tuple(torch.as_tensor(a).to(self.device, non_blocking=True) for a in batch[:2])
        self.close()

    def close(self):
        if self._open:
            self._open = False
            self.adapter.on_epoch_end()
