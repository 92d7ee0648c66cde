"""The torch engine's batches: the DistributedSampler shuffle, one worker or several."""

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _torch_only(backend):
    if backend != "torch":
        pytest.skip("the torch engine's feed")


def test_the_workers_batches_make_up_the_single_device_batches():
    import torch

    from kzoo.engine.torch_feed import DeviceBatches

    x = np.arange(96, dtype="float32")[:, None]
    y = np.arange(96)
    alone = DeviceBatches(x, y, 32, "cpu", seed=4)
    halves = [DeviceBatches(x, y, 16, "cpu", seed=4, rank=r, replicas=2) for r in range(2)]
    for epoch in range(2):
        whole = [yb for _, yb in alone.epoch(epoch)]
        parts = list(zip(*(feed.epoch(epoch) for feed in halves)))
        assert len(whole) == len(parts) == 3
        for batch, (a, b) in zip(whole, parts):  # step k: the k-th global batch, split between the workers
            assert sorted(batch.tolist()) == sorted(a[1].tolist() + b[1].tolist())
            np.testing.assert_array_equal(a[0][:, 0].numpy(), a[1].numpy())
    generator = torch.Generator().manual_seed(4 + 1)  # DistributedSampler: seed + epoch
    assert torch.cat(whole).tolist() == torch.randperm(96, generator=generator).tolist()
    assert torch.cat(whole).tolist() != torch.cat([yb for _, yb in alone.epoch(0)]).tolist()


def test_evaluation_batches_keep_the_file_order():
    from kzoo.engine.torch_feed import DeviceBatches

    y = np.arange(10)
    feed = DeviceBatches(y[:, None].astype("float32"), y, 4, "cpu", shuffle=False)
    assert [b.tolist() for _, b in feed.epoch()] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
