"""Trainings for the tensorflow and jax data-parallel tests, 1 device against 2, in a fresh process.

``python replica_runs.py BACKEND PART OUT`` starts the backend with 2 simulated devices (the count must be fixed
before the framework starts, hence a process of its own) and trains the same small models twice with plain
``keras.Model.fit``: once with no strategy or distribution at all (one device: the independent reference), once
inside kzoo's scope for 2 devices. It writes their weights to ``OUT/PART.npz`` and scores to ``OUT/PART.json``.

PART ``equal``: a conv net without dropout or batch norm, 2 epochs, each run saving a ``.keras`` checkpoint after
epoch 1 that the other device count loads and trains on for epoch 2. PART ``bn_stream``: a batch-norm model
(tensorflow: also with synchronised batch norm), and the conv net fed by a ``keras.utils.PyDataset`` with
background workers through kzoo's fit loop.
"""

import contextlib
import json
import os
import sys

import numpy as np

from kzoo.backend import configure_devices, set_backend

SAMPLES = {"tensorflow": 256, "jax": 247}  # jax: an odd last batch (23 samples) for 2 devices
BATCH = 32


def images(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 8, 1)).astype("float32")
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype("int64")
    return x, y


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    centres = np.random.default_rng(7).normal(scale=1.2, size=(4, 16))
    return (centres[y] + rng.normal(size=(n, 16))).astype("float32"), y.astype("int64")


def main(backend, part, out):
    set_backend(backend)
    configure_devices(backend, 2)
    import keras

    from kzoo.engine import distributed

    plan = distributed.DevicePlan(backend, 2)
    scopes = {1: contextlib.nullcontext(), 2: distributed.build_scope(plan)}
    results, weights = {}, {}

    def flat(model):
        return np.concatenate([np.ravel(w) for w in model.get_weights()])

    def compiled(model):
        model.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"],
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    def conv_net():
        keras.utils.set_random_seed(0)
        return compiled(keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                                          keras.layers.Flatten(), keras.layers.Dense(2)]))

    x, y = images(SAMPLES[backend])
    fit = dict(batch_size=BATCH, shuffle=False, verbose=0)
    if part == "equal":
        first_epoch = {}
        for count, scope in scopes.items():
            with scope:
                model = conv_net()
                model.fit(x, y, epochs=1, **fit)
                first_epoch[count] = os.path.join(out, f"epoch1-{count}devices.keras")
                model.save(first_epoch[count])
                history = model.fit(x, y, epochs=2, initial_epoch=1, **fit)
                weights[f"equal{count}"] = flat(model)
                results[f"accuracy{count}"] = history.history["accuracy"][-1]
                results[f"evaluate{count}"] = model.evaluate(x, y, batch_size=BATCH, verbose=0)
                results[f"replicas{count}"] = replicas(backend, model)
        for count, scope in scopes.items():  # epoch 2 from the other device count's epoch-1 file
            with scope:
                model = keras.saving.load_model(first_epoch[3 - count])
                model.fit(x, y, epochs=2, initial_epoch=1, **fit)
                weights[f"resumed{count}"] = flat(model)
    else:
        class Stream(keras.utils.PyDataset):  # batches drawn by Keras's enqueuer, as kzoo.data.pipeline's are
            epochs_ended = 0

            def on_epoch_end(self):  # kzoo's image batches draw their next order here
                self.epochs_ended += 1

            def __len__(self):
                return -(-len(x) // BATCH)

            def __getitem__(self, i):
                return x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]

        xb, yb = blobs(1024, seed=1)
        xt, yt = blobs(512, seed=2)
        runs = [(1, False), (2, False)] + ([(2, True)] if backend == "tensorflow" else [])
        for count, sync in runs:
            name = f"bn{count}{'sync' if sync else ''}"
            with scopes[count]:
                keras.utils.set_random_seed(0)
                model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, use_bias=False),
                                          keras.layers.BatchNormalization(), keras.layers.ReLU(),
                                          keras.layers.Dense(4)])
                if sync:
                    from kzoo.engine.distributed.tf_mirrored import synchronize_batch_norm

                    results["synchronized_layers"] = synchronize_batch_norm(model)
                compiled(model).fit(xb, yb, batch_size=64, epochs=3, verbose=0)
                results[f"accuracy_{name}"] = model.evaluate(xt, yt, verbose=0)[1]
                weights[name] = flat(model)
                if sync:
                    model.save(os.path.join(out, "sync_bn.keras"))
        from kzoo.engine.loops import FitLoop

        for count, scope in scopes.items():  # through kzoo's fit loop, which the trainer uses
            with scope:
                model, stream = conv_net(), Stream(workers=2)
                FitLoop().run(model, stream, None, validation_data=Stream(workers=2), epochs=2, initial_epoch=0,
                              batch_size=None, callbacks=[])
                weights[f"stream{count}"] = flat(model)
                results[f"stream_epochs{count}"] = stream.epochs_ended
                iterations = model.optimizer.iterations
                results[f"stream_steps{count}"] = int(iterations.numpy() if backend == "tensorflow"
                                                      else np.asarray(iterations))
    np.savez(os.path.join(out, f"{part}.npz"), **weights)
    with open(os.path.join(out, f"{part}.json"), "w") as f:
        json.dump(results, f)


def assert_same_weights(actual, expected, rtol=1e-5):
    """Equal to ``rtol`` relative to the largest weight (the tests' comparison)."""
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * np.abs(expected).max())


def replicas(backend, model):
    """How many devices hold the first kernel (a check that the run was really distributed)."""
    variable = model.trainable_variables[0].value
    if backend == "tensorflow":
        return len(getattr(variable, "values", [variable]))
    return len(variable.sharding.device_set)


if __name__ == "__main__":
    main(*sys.argv[1:])
