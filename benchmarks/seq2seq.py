"""kzoo's ``seq2seq`` training vs a hand-written PyTorch GRU encoder-decoder: same sizes, same batches, one process.

    KERAS_BACKEND=torch python benchmarks/seq2seq.py [--steps 40] [--warmup 3] [--batch-size 64] [--units 256]
        [--num-layers 2] [--embedding-dim 128] [--engine auto] [--json]

Both train on the same ``fra_eng`` pairs, encoded by ``kzoo.tasks.translation.TranslationTask`` as ``kzoo train``
encodes them (seq_len 16: source + ``<eos>``, ``<bos>`` + target -> target + ``<eos>``, 0 = padding), with
teacher forcing, Adam (lr 3e-3, clipnorm 1.0), dropout 0.2. kzoo's side is the ``seq2seq`` model built and
compiled as ``kzoo train`` does it (``create_model``, the task's loss ignoring padding) and trained by the
engine ``kzoo train`` chooses (``choose_loop``). The native side is what a PyTorch user writes: ``nn.Embedding``,
an ``nn.GRU`` encoder over the packed (unpadded) source, an ``nn.GRU`` decoder started from the encoder's final
states, dropout on the embeddings, between layers and before ``nn.Linear`` to the target vocabulary,
``F.cross_entropy(ignore_index=0)``, ``torch.optim.Adam`` + ``clip_grad_norm_``.

The two take turns step by step: kzoo's side is ONE call of the engine's ``run`` over ``--warmup`` +
``--steps`` batches, and after each of its steps a callback runs one native step on a batch of the same
pairs, off kzoo's clock (a kzoo step is timed from the end of the previous native step to its own end, so
kzoo's batching and callbacks count). Each step pair sees about the same machine load, which matters on a
shared machine; the warm-up steps are left out. The median over step pairs of native step time divided by kzoo
step time (kzoo's throughput relative to native) is printed last as ``ratio=1.23``; the ratio of the two
sides' process CPU time per step (less sensitive to a loaded machine than wall time) is printed too.
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
    p.add_argument("--steps", type=int, default=40, help="timed steps per side")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per side first")
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
                self.encoder = nn.GRU(args.embedding_dim, args.units, args.num_layers, batch_first=True,
                                      dropout=0.2 if args.num_layers > 1 else 0.0)
                self.decoder = nn.GRU(args.embedding_dim, args.units, args.num_layers, batch_first=True,
                                      dropout=0.2 if args.num_layers > 1 else 0.0)
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
        from kzoo.factory import create_model
        from kzoo.tasks.translation import TranslationTask

        task = TranslationTask()
        self.model = create_model("seq2seq", input_shape=(16, 16), num_classes=target_vocab, source_vocab=source_vocab,
                                  units=args.units, num_layers=args.num_layers, embedding_dim=args.embedding_dim)
        self.model.compile(optimizer=keras.optimizers.Adam(3e-3, clipnorm=1.0), loss=task.loss("sparse_cce"),
                           metrics=task.metrics("sparse_cce"))
        self.loop = choose_loop(args.engine, keras.backend.backend(), self.model, types.SimpleNamespace())
        self.batch_size = args.batch_size

    def run(self, source, target_in, target_out, after_step):
        """One engine run over the pairs; ``after_step(step)`` runs after each step, off kzoo's clock."""
        import keras

        times = []

        class Relay(keras.callbacks.Callback):
            last = None

            def on_train_batch_end(self, batch, logs=None):
                now = (time.perf_counter(), time.process_time())
                if self.last is not None:
                    times.append((now[0] - self.last[0], now[1] - self.last[1]))
                after_step(batch)
                self.last = (time.perf_counter(), time.process_time())

        self.loop.run(self.model, [source, target_in], target_out, validation_data=None, epochs=1, initial_epoch=0,
                      batch_size=self.batch_size, callbacks=[Relay()])
        return times


def main(argv=None):
    args = parse(argv)
    import numpy as np
    import torch

    from kzoo.engine.loops import seed_everything

    seed_everything(0)
    source, target_in, target_out, source_vocab, target_vocab = load_pairs()
    b, total = args.batch_size, args.warmup + args.steps
    pick = np.random.default_rng(0).permutation(len(source))[: total * b]
    source, target_in, target_out = source[pick], target_in[pick], target_out[pick]
    kzoo_side, native = Kzoo(source_vocab, target_vocab, args), Native(source_vocab, target_vocab, args)
    print(f"seq2seq GRU {args.num_layers}x{args.units}, embeddings {args.embedding_dim}, vocab {source_vocab}/"
          f"{target_vocab}, batch {b}; kzoo engine: {kzoo_side.loop.name}; torch threads {torch.get_num_threads()}, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    native_times = []

    def native_step(step):
        rows = slice(step * b, (step + 1) * b)
        start = (time.perf_counter(), time.process_time())
        native.round([(source[rows], target_in[rows], target_out[rows])])
        native_times.append((time.perf_counter() - start[0], time.process_time() - start[1]))

    kzoo_times = kzoo_side.run(source, target_in, target_out, native_step)
    # kzoo_times[i] is kzoo's step i + 1; pair it with the native step run right before it (step i)
    pairs = list(zip(kzoo_times, native_times))[args.warmup - 1:]
    ratios = [n[0] / k[0] for k, n in pairs]
    ratio = statistics.median(ratios)
    result = {"kzoo_pairs_per_s": round(b * len(pairs) / sum(k[0] for k, _ in pairs), 1),
              "native_pairs_per_s": round(b * len(pairs) / sum(n[0] for _, n in pairs), 1), "ratio": round(ratio, 3),
              "ratio_quartiles": [round(q, 3) for q in statistics.quantiles(ratios, n=4)],
              "cpu_time_ratio": round(sum(n[1] for _, n in pairs) / sum(k[1] for k, _ in pairs), 3),
              "steps": len(pairs), "engine": kzoo_side.loop.name, "load": os.getloadavg()[0]}
    print(f"kzoo {result['kzoo_pairs_per_s']} pairs/s, native {result['native_pairs_per_s']} pairs/s over "
          f"{len(pairs)} step pairs (quartiles of the ratio {result['ratio_quartiles']}; native/kzoo CPU time "
          f"per step {result['cpu_time_ratio']})")
    if args.json:
        print(json.dumps(result))
    print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
