"""kzoo's ``seq2seq`` training vs a hand-written PyTorch GRU encoder-decoder: same sizes, same batches, one process.

    KERAS_BACKEND=torch python benchmarks/seq2seq.py [--steps 48] [--rounds 4] [--batch-size 64] [--units 256]
        [--num-layers 2] [--embedding-dim 128] [--engine auto] [--json]

Both train on the same ``fra_eng`` pairs, encoded by ``kzoo.tasks.translation.TranslationTask`` as ``kzoo train``
encodes them (seq_len 16: source + ``<eos>``, ``<bos>`` + target -> target + ``<eos>``, 0 = padding), with
teacher forcing, Adam (lr 3e-3, clipnorm 1.0), dropout 0.2. kzoo's side is the ``seq2seq`` model built and
compiled as ``kzoo train`` does it (``create_model``, the task's loss ignoring padding) and trained by the
engine ``kzoo train`` chooses (``choose_loop``). The native side is what a PyTorch user writes: ``nn.Embedding``,
an ``nn.GRU`` encoder over the packed (unpadded) source, an ``nn.GRU`` decoder started from the encoder's final
states, dropout on the embeddings, between layers and before ``nn.Linear`` to the target vocabulary,
``F.cross_entropy(ignore_index=0)``, ``torch.optim.Adam`` + ``clip_grad_norm_``.

The two take turns for ``--rounds`` rounds of ``--steps`` steps (the order flips every round); each round's
first step is untimed (set-up, warm-up). The median over rounds of kzoo's pairs/s divided by native pairs/s is
printed last as ``ratio=1.23``: both sides share the machine's load at the same moments.
"""

import argparse
import json
import os
import statistics
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("KERAS_BACKEND", "torch")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=48, help="steps per round and side (the first one untimed)")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--units", type=int, default=256)
    p.add_argument("--num-layers", type=int, default=2)
    p.add_argument("--embedding-dim", type=int, default=128)
    p.add_argument("--engine", default="auto", help="kzoo engine: auto (what `kzoo train` uses), fit, torch")
    p.add_argument("--json", action="store_true", help="also print one JSON line of results")
    return p.parse_args(argv)


def load_pairs(seq_len=16):
    """``(source, target_in, target_out)`` int arrays and the two vocabulary sizes, as ``kzoo train`` has them."""
    from kzoo.data import load_dataset
    from kzoo.tasks.translation import TranslationTask

    task = TranslationTask()
    config = types.SimpleNamespace(vocab="words", seq_len=seq_len, limit=None, val_split=0.0, seed=0)
    prepared = task.prepare(load_dataset("fra_eng"), config)
    (source, target_in), target_out = prepared.x_train, prepared.y_train
    return source, target_in, target_out, len(task.source_vocab), len(task.target_vocab)


class Native:
    """The hand-written PyTorch GRU encoder-decoder."""

    def __init__(self, source_vocab, target_vocab, args):
        import torch
        from torch import nn

        class Seq2Seq(nn.Module):
            def __init__(self):
                super().__init__()
                self.source_embedding = nn.Embedding(source_vocab, args.embedding_dim)
                self.target_embedding = nn.Embedding(target_vocab, args.embedding_dim)
                self.encoder = nn.GRU(args.embedding_dim, args.units, args.num_layers, batch_first=True, dropout=0.2)
                self.decoder = nn.GRU(args.embedding_dim, args.units, args.num_layers, batch_first=True, dropout=0.2)
                self.dropout = nn.Dropout(0.2)
                self.out = nn.Linear(args.units, target_vocab)

            def forward(self, source, target_in):
                lengths = (source != 0).sum(1).cpu()
                packed = nn.utils.rnn.pack_padded_sequence(self.dropout(self.source_embedding(source)), lengths,
                                                           batch_first=True, enforce_sorted=False)
                _, state = self.encoder(packed)
                decoded, _ = self.decoder(self.dropout(self.target_embedding(target_in)), state)
                return self.out(self.dropout(decoded))

        self.torch = torch
        self.model = Seq2Seq()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=3e-3)

    def step(self, source, target_in, target_out):
        torch = self.torch
        logits = self.model(source, target_in)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_out.flatten(), ignore_index=0)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        return loss.item()

    def round(self, batches):
        torch = self.torch
        times = []
        for source, target_in, target_out in batches:
            self.step(torch.from_numpy(source).long(), torch.from_numpy(target_in).long(),
                      torch.from_numpy(target_out).long())
            times.append(time.perf_counter())
        return times


class Kzoo:
    """``seq2seq`` built, compiled and trained as ``kzoo train`` does it."""

    def __init__(self, source_vocab, target_vocab, args):
        import keras

        from kzoo.engine.loops import choose_loop
        from kzoo.registry import create_model
        from kzoo.tasks.translation import TranslationTask

        task = TranslationTask()
        self.model = create_model("seq2seq", input_shape=(16, 16), num_classes=target_vocab, source_vocab=source_vocab,
                                  units=args.units, num_layers=args.num_layers, embedding_dim=args.embedding_dim)
        self.model.compile(optimizer=keras.optimizers.Adam(3e-3, clipnorm=1.0), loss=task.loss("sparse_cce"),
                           metrics=task.metrics("sparse_cce"))
        self.loop = choose_loop(args.engine, keras.backend.backend(), self.model, types.SimpleNamespace())
        self.batch_size = args.batch_size

    def round(self, batches):
        import keras
        import numpy as np

        times = []

        class Clock(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                times.append(time.perf_counter())

        source, target_in, target_out = (np.concatenate(part) for part in zip(*batches))
        self.loop.run(self.model, [source, target_in], target_out, validation_data=None, epochs=1, initial_epoch=0,
                      batch_size=self.batch_size, callbacks=[Clock()])
        return times


def pairs_per_second(times, batch_size):
    return (len(times) - 1) * batch_size / (times[-1] - times[0])


def main(argv=None):
    args = parse(argv)
    import numpy as np
    import torch

    from kzoo.engine.loops import seed_everything

    seed_everything(0)
    source, target_in, target_out, source_vocab, target_vocab = load_pairs()
    order = np.random.default_rng(0).permutation(len(source))
    sides = {"kzoo": Kzoo(source_vocab, target_vocab, args), "native": Native(source_vocab, target_vocab, args)}
    print(f"seq2seq GRU {args.num_layers}x{args.units}, embeddings {args.embedding_dim}, vocab {source_vocab}/"
          f"{target_vocab}, batch {args.batch_size}; kzoo engine: {sides['kzoo'].loop.name}; torch threads "
          f"{torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}", flush=True)
    rates = {"kzoo": [], "native": []}
    b = args.batch_size
    for r in range(args.rounds):
        start = r * args.steps * b
        picks = [order[(start + i * b + np.arange(b)) % len(order)] for i in range(args.steps)]
        batches = [(source[p], target_in[p], target_out[p]) for p in picks]
        for name in (("kzoo", "native") if r % 2 == 0 else ("native", "kzoo")):
            rates[name].append(pairs_per_second(sides[name].round(batches), b))
        print(f"round {r + 1}: kzoo {rates['kzoo'][-1]:.0f} pairs/s, native {rates['native'][-1]:.0f} pairs/s",
              flush=True)
    ratio = statistics.median(k / n for k, n in zip(rates["kzoo"], rates["native"]))
    result = {"kzoo_pairs_per_s": statistics.median(rates["kzoo"]),
              "native_pairs_per_s": statistics.median(rates["native"]), "ratio": round(ratio, 3),
              "engine": sides["kzoo"].loop.name, "load": os.getloadavg()[0]}
    if args.json:
        print(json.dumps(result))
    print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
