"""The streaming pipeline: image files decoded, resized and augmented in background workers, batch by batch.

:class:`ImageBatches` is a ``keras.utils.PyDataset``: ``keras.Model.fit`` (every backend) and kzoo's torch
engine (:mod:`kzoo.engine.torch_loop`) draw its batches: ``fit`` through Keras's enqueuer, which runs ``workers``
threads and keeps ``max_queue_size`` batches ready while the model trains, kzoo's own consumers through
:func:`iterate` (``workers`` producer threads, batches handed over in order). A batch's files are decoded by
OpenCV outside the GIL and resized together (:func:`kzoo.data.image_decode.decode_images`). Only the batches in flight are in memory, whatever the folder's
size; ``cache="ram"`` keeps the decoded uint8 images for later epochs, ``cache="disk"`` keeps them in a memory-mapped file under
``$KZOO_CACHE`` (default ``~/.cache/kzoo``), reused by later runs on the same folder, size and channels, and
rebuilt when a file's name, size or modification time changes. ``cache="auto"`` (the default) is ``ram`` when
the folder's decoded images fit in :func:`ram_cache_budget` (512 MB, ``$KZOO_RAM_CACHE_MB``, never more than a
quarter of the memory available), else ``none``: small folders train as fast as arrays in memory after their
first epoch, large ones stream with memory bounded by the batches in flight (:func:`resolve_cache`).

No TensorFlow is needed: the enqueuer is Keras's own.
"""

from __future__ import annotations

import hashlib
import os
import threading

import keras
import numpy as np

from kzoo.data.image_decode import decode_images
from kzoo.data.image_folder import report_bad_image
from kzoo.errors import DataError
from kzoo.memory import available_memory

WORKERS = 2
RAM_CACHE_MB = 512


def ram_cache_budget():
    """Bytes ``cache="auto"`` may keep in RAM: ``$KZOO_RAM_CACHE_MB`` (default 512 MB), at most a quarter of the
    memory available now."""
    try:
        budget = int(float(os.environ.get("KZOO_RAM_CACHE_MB") or RAM_CACHE_MB) * 2**20)
    except ValueError:
        raise DataError(f"KZOO_RAM_CACHE_MB must be a number of megabytes. "
                        f"Received: {os.environ['KZOO_RAM_CACHE_MB']!r}.") from None
    available = available_memory()
    if available is None:  # unknown (not Linux or BSD): the budget alone
        return max(budget, 0)
    return max(min(budget, available // 4), 0)


def resolve_cache(kind, files, image_size, channels):
    """The cache an image folder gets: ``kind`` itself unless it is ``"auto"``, which is ``"ram"`` when the
    ``files`` decoded as uint8 ``image_size`` x ``channels`` fit in :func:`ram_cache_budget`, else ``"none"``.
    Returns ``(kind, decoded bytes)``."""
    size = int(files) * int(np.prod(image_size)) * int(channels)
    if kind != "auto":
        return kind, size
    return ("ram" if size <= ram_cache_budget() else "none"), size


def cache_dir():
    return os.path.expanduser(os.environ.get("KZOO_CACHE") or "~/.cache/kzoo")


class DecodedCache:
    """Decoded uint8 images by file path, in RAM or in a memory-mapped file shared by runs.

    Both kinds hold one ``(files, H, W, C)`` uint8 array (RAM: allocated page by page as images arrive; disk: a
    memory-mapped file) and a flag per file, so a batch whose images are all decoded is one gather
    (:meth:`take`), as fast as indexing arrays in memory. The disk cache is keyed by the folder, the image size,
    the channels and every file's relative path, size and modification time: any change gives a new key, hence
    a fresh cache.
    """

    def __init__(self, kind, paths, image_size, channels, root=None):
        self.kind = kind
        self.shape = (*image_size, channels)
        self._lock = threading.Lock()
        self.hits = 0
        self.index = {path: i for i, path in enumerate(sorted(set(paths)))}
        n = max(len(self.index), 1)
        if kind == "ram":
            self._pixels = np.zeros((n, *self.shape), dtype=np.uint8)  # calloc: pages are taken when written
            self._done = np.zeros(n, dtype=np.uint8)
            return
        key = self.key(sorted(self.index), image_size, channels, root)
        folder = os.path.join(cache_dir(), "images")
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, f"{key}.u8")
        mode = "r+" if os.path.exists(self.path) and os.path.exists(self.path + ".done") else "w+"
        self._pixels = np.memmap(self.path, dtype=np.uint8, mode=mode, shape=(n, *self.shape))
        self._done = np.memmap(self.path + ".done", dtype=np.uint8, mode=mode, shape=(n,))

    @staticmethod
    def key(paths, image_size, channels, root):
        digest = hashlib.sha256(f"{root}|{tuple(image_size)}|{channels}".encode())
        for path in paths:
            stat = os.stat(path)
            digest.update(f"\n{os.path.relpath(path, root) if root else path}|{stat.st_size}|{stat.st_mtime_ns}"
                          .encode())
        return digest.hexdigest()[:32]

    def slots(self, paths):
        """The cache rows of ``paths`` (-1 for a path this cache does not hold)."""
        return np.array([self.index.get(path, -1) for path in paths], dtype=np.int64)

    def get(self, path):
        i = self.index.get(path)
        image = np.array(self._pixels[i]) if i is not None and self._done[i] else None
        if image is not None:
            self.hits += 1
        return image

    def take(self, slots):
        """The images of cache rows ``slots`` as one array, or ``None`` unless every one is decoded."""
        if len(slots) == 0 or slots.min() < 0 or not self._done[slots].all():
            return None
        self.hits += len(slots)
        return self._pixels[slots]

    def put(self, path, image):
        i = self.index.get(path)
        if i is not None:
            with self._lock:
                self._pixels[i] = image
                self._done[i] = 1

    def flush(self):
        if self.kind == "disk":
            self._pixels.flush()
            self._done.flush()


class ImageBatches(keras.utils.PyDataset):
    """``(images, labels)`` batches of image files: float32 in [0, 1] ``(batch, H, W, C)`` and int64 labels.

    Args:
        files: a :class:`kzoo.data.image_folder.FileList`.
        image_size: ``(height, width)``.
        channels: 1 or 3.
        batch_size: images per batch (the last batch may be smaller; so is one that lost unreadable files).
        shuffle: a new seeded order every epoch (training); otherwise the file order.
        augment: random shifts of up to 10% (and ``flip``: horizontal flips), drawn per image.
        seed: seeds the order and the augmentation (epoch ``e`` is the same in every run with this seed).
        targets: maps int labels to what the loss needs (for example one-hot); ``None`` keeps the labels.
        cache: a :class:`DecodedCache` or ``None``.
        strict: an unreadable file is an error instead of a skipped file with a warning.
        workers: background decoding threads.
    """

    def __init__(self, files, image_size, channels, batch_size, *, shuffle=False, augment=False, flip=False,
                 seed=0, targets=None, cache=None, strict=False, workers=WORKERS):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max(4, 2 * workers))
        self.paths, self.labels = list(files.paths), np.asarray(files.labels, dtype="int64")
        self.image_size, self.channels = tuple(image_size), channels
        self.batch_size, self.shuffle, self.augment, self.flip = batch_size, shuffle, augment, flip
        self.seed, self.targets, self.cache, self.strict = seed, targets, cache, strict
        self.skipped = set()
        self.epoch = 0
        self.rank, self.replicas = 0, 1
        self._slots = cache.slots(self.paths) if cache is not None else None
        self._order = self._draw_order()

    def shard(self, rank, replicas):
        """This dataset as worker ``rank`` of ``replicas`` sees it, with the ``DistributedSampler`` contract:
        the epoch's order padded to a multiple of ``replicas`` (from its start), positions ``rank, rank +
        replicas, ...``, batches of ``batch_size / replicas`` (``batch_size`` is the global batch)."""
        import copy

        if self.batch_size % replicas:
            raise DataError(f"A global batch of {self.batch_size} does not split over {replicas} workers.")
        part = copy.copy(self)
        part.rank, part.replicas, part.batch_size = rank, replicas, self.batch_size // replicas
        part._order = part._draw_order()
        return part

    @property
    def samples(self):
        return len(self._order)

    @property
    def input_shape(self):
        return (*self.image_size, self.channels)

    def __len__(self):
        return -(-self.samples // self.batch_size)

    def _draw_order(self):
        n = len(self.paths)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)
        if self.replicas == 1:
            return order
        padded = np.resize(order, -(-n // self.replicas) * self.replicas)  # repeats the start, as torch pads
        return padded[self.rank::self.replicas]

    def on_epoch_end(self):
        self.epoch += 1
        self._order = self._draw_order()
        if self.cache is not None:
            self.cache.flush()

    def _unreadable(self, path, exc):
        if path not in self.skipped:
            self.skipped.add(path)
            report_bad_image(path, exc, self.strict)

    def load(self, path):
        """The decoded uint8 image of one file (from the cache when it is there), or ``None`` if unreadable."""
        if self.cache is not None and (cached := self.cache.get(path)) is not None:
            return cached
        image = decode_images([path], self.image_size, self.channels, self._unreadable)[0]
        if image is not None and self.cache is not None:
            self.cache.put(path, image)
        return image

    def _images(self, rows):
        """The decoded images of positions ``rows`` (unreadable files left out) and their labels: one gather
        when the cache holds them all, else the missing ones decoded together (:func:`decode_images`)."""
        if self.cache is not None and (x := self.cache.take(self._slots[rows])) is not None:
            return x, self.labels[rows]
        paths = [self.paths[i] for i in rows]
        images = [self.cache.get(path) if self.cache is not None else None for path in paths]
        missing = [j for j, image in enumerate(images) if image is None]
        decoded = decode_images([paths[j] for j in missing], self.image_size, self.channels, self._unreadable)
        for j, image in zip(missing, decoded):
            images[j] = image
            if image is not None and self.cache is not None:
                self.cache.put(paths[j], image)
        keep = [j for j, image in enumerate(images) if image is not None]
        if not keep:
            return None, self.labels[rows[:0]]
        return np.stack([images[j] for j in keep]), self.labels[rows[keep]]

    def __getitem__(self, index):
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        x, y = self._images(rows)
        position = (index + 1) * self.batch_size
        images, labels = [], []
        while x is None and not images and position < len(self._order) + len(rows):  # only unreadable files
            i = self._order[position % len(self._order)]
            image = self.load(self.paths[i])
            if image is not None:
                images.append(image)
                labels.append(self.labels[i])
            position += 1
        if x is None:
            if not images:
                raise DataError(f"None of the {len(self.paths)} images of this split is readable.")
            x, y = np.stack(images), np.asarray(labels, dtype="int64")
        if self.augment:
            x = self._augment(x, index)
        x = x.astype("float32") / np.float32(255)  # exactly as in-memory images (kzoo.tasks.base.images_to_float)
        y = self.targets(y) if self.targets is not None else y
        return x, y

    def _augment(self, x, index):
        """Per-image random shifts of up to 10% of each side (zero fill) and, with ``flip``, mirror images.

        One gather for the whole batch: output pixel ``(i, r, c)`` is input pixel ``(i, r - dy_i, c - dx_i)``
        (column mirrored first for a flipped image), zero where that falls outside the image.
        """
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        n, height, width, _ = x.shape
        dy = rng.integers(-(height // 10), height // 10 + 1, size=n)
        dx = rng.integers(-(width // 10), width // 10 + 1, size=n)
        flips = rng.random(n) < 0.5 if self.flip else np.zeros(n, bool)
        rows = np.arange(height)[None, :] - dy[:, None]  # (n, H) source rows
        cols = np.arange(width)[None, :] - dx[:, None]  # (n, W) source columns of the (mirrored) image
        inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
        cols = np.where(flips[:, None], width - 1 - cols, cols)
        out = x[np.arange(n)[:, None, None], np.clip(rows, 0, height - 1)[:, :, None],
                np.clip(cols, 0, width - 1)[:, None, :]]
        out[~inside] = 0
        return out


def iterate(batches, depth=4, workers=None):
    """Every batch of a ``PyDataset`` once, in order, made by background threads while the caller works.

    kzoo's own consumers (the torch engine, evaluation, prediction) read batches this way; ``fit`` on tensorflow
    and jax uses Keras's enqueuer with the dataset's ``workers``. Here ``workers`` threads (default: the
    dataset's ``workers``, at least 1) each make every ``workers``-th batch, keeping up to ``depth`` batches
    ready in all, handed over in order: a batch is made while the training step runs (torch releases the GIL
    in its kernels, OpenCV while it reads and decodes), with one hand-off per batch (Keras's pool measured
    slower on 2 cores, ``docs/benchmarks.md``). The epoch ends with the dataset's ``on_epoch_end`` (a new
    seeded order), also when the caller stops early; an error while making a batch is raised in the caller.
    """
    import queue

    workers = max(1, int(getattr(batches, "workers", 1) if workers is None else workers))
    count = len(batches)
    workers = min(workers, max(count, 1))
    done = object()
    ready = [queue.Queue(maxsize=max(1, -(-depth // workers))) for _ in range(workers)]
    stop = threading.Event()

    def put(k, item):
        while not stop.is_set():
            try:
                ready[k].put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce(k):
        try:
            for index in range(k, count, workers):
                if stop.is_set() or not put(k, batches[index]):
                    return
        except BaseException as exc:  # noqa: BLE001  (handed to the consumer, which raises it)
            put(k, exc)
            return
        put(k, done)

    begin = getattr(batches, "on_epoch_begin", None)
    if begin is not None:
        begin()
    threads = [threading.Thread(target=produce, args=(k,), name=f"kzoo-batches-{k}", daemon=True)
               for k in range(workers)]
    for thread in threads:
        thread.start()
    try:
        for index in range(count):
            item = ready[index % workers].get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        batches.on_epoch_end()
