"""How training examples are drawn: token windows and image pairs, and the per-epoch batches built from them.

Training data drawn afresh every epoch is a ``keras.utils.PyDataset`` (every backend):

* :class:`WindowBatches`: a language model's ``seq_len`` windows of a token stream, from a new random offset
  and in a new order each epoch (d2l's "random sampling");
* :class:`PairBatches`: balanced similar/dissimilar image pairs of a Siamese network, new pairs each epoch.

Both are seeded: epoch ``e`` of a run with seed ``s`` always sees the same batches, also after a resume.
"""

import keras
import numpy as np

from kzoo.errors import DataError


def windows(ids, seq_len, offset=0):
    """Non-overlapping ``seq_len`` windows of token ids from ``offset`` and their targets, shifted by one.

    Returns:
        ``(x, y)``, both int32 ``(N, seq_len)``.
    """
    count = (len(ids) - 1 - offset) // seq_len
    starts = offset + np.arange(count) * seq_len
    index = starts[:, None] + np.arange(seq_len)[None, :]
    return ids[index].astype("int32"), ids[index + 1].astype("int32")


def make_pairs(labels, count, rng):
    """Balanced random pairs of example indices: the first half similar (same label), the rest dissimilar.

    Args:
        labels: integer class labels ``(N,)``; at least two classes.
        count: the number of pairs (an odd count gets one more similar pair).
        rng: a ``numpy.random.Generator``.

    Returns:
        ``(left, right, same)``: index arrays and float32 labels (1 similar, 0 dissimilar), in a random order.
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise DataError(f"Pairs need at least two classes. Received labels of {len(classes)} class(es).")
    members = [np.flatnonzero(labels == c) for c in classes]
    class_of = np.searchsorted(classes, labels)
    left = rng.integers(0, len(labels), count)
    same = (np.arange(count) < (count + 1) // 2).astype("float32")
    partner_class = class_of[left].copy()
    dissimilar = same == 0
    partner_class[dissimilar] = (partner_class[dissimilar] + rng.integers(1, len(classes), dissimilar.sum())) \
        % len(classes)
    right = np.empty(count, dtype="int64")
    for c, idx in enumerate(members):
        where = np.flatnonzero(partner_class == c)
        right[where] = idx[rng.integers(0, len(idx), len(where))]
    order = rng.permutation(count)
    return left[order], right[order], same[order]


class _EpochBatches(keras.utils.PyDataset):
    """Batches of arrays drawn for each epoch from a generator seeded by ``(seed, epoch)``.

    A run resumed at epoch ``k`` passes ``first_epoch=k`` and draws what the uninterrupted run drew at epoch ``k``.
    """

    def __init__(self, batch_size, seed, first_epoch=0):
        super().__init__()
        self.batch_size, self.seed = batch_size, seed
        self.epoch = first_epoch
        self.draw(np.random.default_rng([seed, self.epoch]))

    def draw(self, rng):
        raise NotImplementedError

    @property
    def samples(self):
        """Examples per epoch."""
        raise NotImplementedError

    def __len__(self):
        return -(-self.samples // self.batch_size)

    def on_epoch_end(self):
        self.epoch += 1
        self.draw(np.random.default_rng([self.seed, self.epoch]))


class WindowBatches(_EpochBatches):
    """``(x, y)`` batches of token windows ``(batch, seq_len)``; ``y`` is ``x`` shifted by one token.

    Args:
        ids: the training token ids (1-D int array).
        seq_len: tokens per window.
        batch_size: windows per batch.
        seed: the run's seed.
        first_epoch: the epoch the run starts at (``> 0`` on a resume).
    """

    def __init__(self, ids, seq_len, batch_size, seed=0, first_epoch=0):
        self.ids, self.seq_len = np.asarray(ids), seq_len
        self._count = (len(self.ids) - seq_len) // seq_len  # windows at any offset in [0, seq_len)
        super().__init__(batch_size, seed, first_epoch)

    @property
    def samples(self):
        return self._count

    def draw(self, rng):
        x, y = windows(self.ids, self.seq_len, offset=int(rng.integers(0, self.seq_len)))
        order = rng.permutation(len(x))[: self._count]
        self.x, self.y = x[order], y[order]

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[part], self.y[part]


class PairBatches(_EpochBatches):
    """``({"left", "right"}, same)`` batches of image pairs, half similar (1) and half dissimilar (0).

    Args:
        images: float32 images ``(N, H, W, C)``.
        labels: their integer classes ``(N,)``.
        batch_size: pairs per batch.
        seed: the run's seed.
        pairs: pairs per epoch (default: one per image).
        first_epoch: the epoch the run starts at (``> 0`` on a resume).
    """

    def __init__(self, images, labels, batch_size, seed=0, pairs=None, first_epoch=0):
        self.images, self.labels = images, np.asarray(labels)
        self._count = pairs or len(self.labels)
        super().__init__(batch_size, seed, first_epoch)

    @property
    def samples(self):
        return self._count

    def draw(self, rng):
        self.left, self.right, self.same = make_pairs(self.labels, self._count, rng)

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return ({"left": self.images[self.left[part]], "right": self.images[self.right[part]]}, self.same[part])
