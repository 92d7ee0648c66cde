"""The streaming pipeline: batches equal the files decoded by Pillow, seeded order, caches, bad files, memory."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kzoo.data.image_folder import ImageDataWarning, open_image_folder
from kzoo.errors import DataError

ROOT = Path(__file__).resolve().parents[2]


def _batches(folder, split="train", **kwargs):
    from kzoo.data.pipeline import ImageBatches

    return ImageBatches(folder.split(split), folder.image_size, folder.channels, kwargs.pop("batch_size", 32),
                        **kwargs)


def _all(batches):
    from kzoo.data.pipeline import iterate

    xs, ys = zip(*iterate(batches))
    return np.concatenate(xs), np.concatenate(ys)


def test_batches_are_the_files_as_pillow_reads_them(digits_folder):
    folder = open_image_folder(digits_folder)
    x, y = _all(_batches(folder, "test"))
    expected = np.stack([np.asarray(Image.open(p), dtype="float32")[..., None] / 255 for p in folder.test.paths])
    np.testing.assert_allclose(x, expected, atol=1e-6)
    np.testing.assert_array_equal(y, folder.test.labels)
    assert x.dtype == np.float32 and y.dtype == np.int64


def test_training_order_is_seeded_and_new_each_epoch(digits_folder):
    folder = open_image_folder(digits_folder)
    a, b = _batches(folder, shuffle=True, seed=5), _batches(folder, shuffle=True, seed=5)
    first = _all(a)[1]
    np.testing.assert_array_equal(first, _all(b)[1])  # same seed, same epoch: same order
    second = _all(a)[1]  # iterate() ended the epoch: a new order, the same multiset
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(np.sort(first), np.sort(folder.train.labels))


@pytest.mark.parametrize("replicas", [2, 3])
def test_a_shard_follows_the_distributed_sampler_contract(digits_folder, replicas):
    """Worker r of W: the epoch's order padded and strided as torch's DistributedSampler does it."""
    torch_data = pytest.importorskip("torch.utils.data.distributed")
    folder = open_image_folder(digits_folder)
    full = _batches(folder, shuffle=True, seed=5, batch_size=30)
    shards = [_batches(folder, shuffle=True, seed=5, batch_size=30).shard(r, replicas) for r in range(replicas)]
    n = len(folder.train.paths)
    for epoch in range(2):
        for rank, shard in enumerate(shards):
            sampler = torch_data.DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=False)
            expected = full._order[list(sampler)]
            assert shard.batch_size == 30 // replicas and len(shard) == len(shards[0])
            np.testing.assert_array_equal(_all(shard)[1], folder.train.labels[expected])
        full.on_epoch_end()  # the next epoch's order; _all() ended each shard's epoch
    seen = np.concatenate([shard._order for shard in shards])
    assert set(seen) == set(range(n))  # every sample, once (a few repeated to pad)
    assert len(seen) - n < replicas


def test_augmentation_shifts_within_ten_percent(digits_folder):
    folder = open_image_folder(digits_folder)
    plain, _ = _batches(folder, "test")[0]
    shifted, _ = _batches(folder, "test", augment=True)[0]
    assert not np.array_equal(plain, shifted)
    for p, s in zip(plain, shifted):  # each augmented image is the plain one moved by at most 2 pixels
        best = min(np.abs(np.roll(np.roll(p, dy, 0), dx, 1) - s)[2:-2, 2:-2].max()
                   for dy in range(-2, 3) for dx in range(-2, 3))
        assert best < 1e-6


def test_truncated_image_is_skipped_while_streaming(digits_folder):
    victim = sorted((digits_folder / "digit_4").iterdir())[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # the header parses; decoding fails
    folder = open_image_folder(digits_folder, val_split=0, test_split=0)
    assert str(victim) in folder.train.paths
    batches = _batches(folder, batch_size=64)
    with pytest.warns(ImageDataWarning, match=victim.name):
        x, y = _all(batches)
    assert len(y) == len(folder.train) - 1 and batches.skipped == {str(victim)}
    with pytest.raises(DataError, match=victim.name):
        _all(_batches(folder, batch_size=64, strict=True))


@pytest.mark.parametrize("kind", ["ram", "disk"])
def test_cache_serves_later_epochs(digits_folder, tmp_path, monkeypatch, kind):
    from kzoo.data.pipeline import DecodedCache

    monkeypatch.setenv("KZOO_CACHE", str(tmp_path / "cache"))
    folder = open_image_folder(digits_folder)
    cache = DecodedCache(kind, folder.train.paths, folder.image_size, folder.channels, root=folder.root)
    batches = _batches(folder, cache=cache)
    first = _all(batches)
    assert cache.hits == 0
    second = _all(batches)
    assert cache.hits == len(folder.train)
    np.testing.assert_array_equal(first[0][np.argsort(first[1], kind="stable")].sum(0),
                                  second[0][np.argsort(second[1], kind="stable")].sum(0))


def test_auto_cache_is_ram_within_the_budget_and_streams_beyond_it(monkeypatch):
    from kzoo.data.pipeline import ram_cache_budget, resolve_cache

    monkeypatch.setenv("KZOO_RAM_CACHE_MB", "1")
    assert 0 < ram_cache_budget() <= 2**20  # never more than a quarter of the memory free, either
    fits = 2**20 // (28 * 28)  # 28x28 grayscale images in 1 MB
    assert resolve_cache("auto", fits, (28, 28), 1) == ("ram", fits * 28 * 28)
    assert resolve_cache("auto", fits + 1, (28, 28), 1) == ("none", (fits + 1) * 28 * 28)
    assert resolve_cache("auto", fits, (28, 28), 3)[0] == "none"  # three channels take three times the bytes
    for kind in ("none", "ram", "disk"):  # an explicit choice is kept whatever the size
        assert resolve_cache(kind, 10**9, (224, 224), 3)[0] == kind
    monkeypatch.setenv("KZOO_RAM_CACHE_MB", "lots")
    with pytest.raises(DataError, match="KZOO_RAM_CACHE_MB"):
        resolve_cache("auto", 1, (28, 28), 1)


def test_disk_cache_is_reused_across_runs_and_invalidated_by_changes(digits_folder, tmp_path, monkeypatch):
    from kzoo.data.pipeline import DecodedCache

    monkeypatch.setenv("KZOO_CACHE", str(tmp_path / "cache"))
    folder = open_image_folder(digits_folder, val_split=0, test_split=0)

    def run():
        cache = DecodedCache("disk", folder.train.paths, folder.image_size, folder.channels, root=folder.root)
        x, y = _all(_batches(folder, "train", cache=cache))
        cache.flush()
        return cache, x

    first, x1 = run()
    again, x2 = run()  # a new run, same folder and size: every image from the cache
    assert first.path == again.path and again.hits == len(folder.train)
    np.testing.assert_array_equal(x1, x2)
    changed = Path(folder.train.paths[0])
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(changed)
    os.utime(changed, ns=(1, 1))
    fresh, x3 = run()
    assert fresh.path != first.path and fresh.hits == 0
    assert x3[0].min() == 1.0  # the new pixels, not the cached ones
    other_size = DecodedCache("disk", folder.train.paths, (14, 14), folder.channels, root=folder.root)
    assert other_size.path != fresh.path


_MEMORY_PROBE = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from PIL import Image
    import os
    root, count = sys.argv[1], int(sys.argv[2])
    from kzoo.data.image_folder import open_image_folder
    from kzoo.data.pipeline import ImageBatches, iterate
    folder = open_image_folder(root, val_split=0, test_split=0)
    assert len(folder.train) == count, len(folder.train)
    batches = ImageBatches(folder.train, folder.image_size, folder.channels, 64, shuffle=True, augment=True)
    seen = 0
    for x, y in iterate(batches):
        seen += len(y)
    assert seen == count
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
""")


def _write_noise_pngs(root, count):
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"c{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / f"{i:06d}.png",
                                                                             compress_level=0)


@pytest.mark.slow
def test_memory_is_bounded_by_the_batches_not_the_folder(tmp_path):
    """Peak RSS streaming 60,000 images stays within 200 MB of streaming 6,000 (the arrays alone: 188 MB)."""
    peaks = {}
    for count in (6000, 60000):
        root = tmp_path / f"f{count}"
        _write_noise_pngs(root, count)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "torch")}
        result = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(root), str(count)], env=env,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-2000:]
        peaks[count] = int(result.stdout.split()[-1])
    assert peaks[60000] - peaks[6000] < 200, peaks


def test_batch_augmentation_equals_the_per_image_shifts_and_flips(digits_folder):
    """The one-gather augmentation against a per-image loop of slices (NumPy), same random draws."""
    folder = open_image_folder(digits_folder)
    batches = _batches(folder, "test", augment=True, flip=True, seed=3)
    x = np.random.default_rng(0).integers(0, 256, (16, 20, 12, 3), dtype=np.uint8)
    rng = np.random.default_rng([3, 0, 5, 1])
    n, height, width, _ = x.shape
    dy = rng.integers(-(height // 10), height // 10 + 1, size=n)
    dx = rng.integers(-(width // 10), width // 10 + 1, size=n)
    flips = rng.random(n) < 0.5
    expected = np.zeros_like(x)
    for i in range(n):
        image = x[i, :, ::-1] if flips[i] else x[i]
        for r in range(height):
            for c in range(width):
                if 0 <= r - dy[i] < height and 0 <= c - dx[i] < width:
                    expected[i, r, c] = image[r - dy[i], c - dx[i]]
    assert flips.any() and (dy != 0).any()
    np.testing.assert_array_equal(batches._augment(x, 5), expected)
