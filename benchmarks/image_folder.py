"""The image-folder pipeline against keras.utils.image_dataset_from_directory and a plain Pillow loop; and
LeNet-5 trained on a folder against the same images in memory.

    python benchmarks/image_folder.py [--images 6000] [--size 32] [--batch-size 64] [--folder DIR]
        [--epochs 2] [--rounds 3] [--workers 2] [--skip-training] [--json]

The folder is the embedded MNIST training digits written as PNG class folders (28x28, grayscale), unless
``--folder`` names one. Every reader decodes each file and resizes it to ``--size`` (so the resize is real
work), in the same process, one after another, over the whole folder once (after one untimed warm-up pass,
which also fills the operating system's file cache):

* ``kzoo``: :class:`kzoo.data.pipeline.ImageBatches` with 2 worker threads, random shifts and flips on;
* ``keras``: ``keras.utils.image_dataset_from_directory`` (tf.data, decode + resize, no augmentation;
  needs TensorFlow);
* ``pillow``: a single-threaded loop of ``Image.open`` / ``convert`` / ``resize`` / ``np.asarray`` plus kzoo's
  same augmentation.

Readers run ``--rounds`` timed passes each, interleaved, and the median pass counts.

Training: ``kzoo.train("lenet5")`` for ``--epochs`` epochs on the folder (streamed every epoch with
``cache="none"``, and with the default ``cache="auto"``, which is RAM when the decoded folder fits the budget)
and on an ``.npz`` of the same images in the same order; the median samples/s of each run's epochs after the
first (the first pays for warm-up, and fills the cache) and their ratios.
"""

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=6000)
    p.add_argument("--size", type=int, default=32, help="every reader resizes to SIZE x SIZE")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--folder", help="an existing image folder (class subfolders) instead of the MNIST PNGs")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="timed passes per reader, interleaved; the median counts")
    p.add_argument("--workers", type=int, default=2, help="kzoo's decoding threads")
    p.add_argument("--models", default="lenet5,resnet18", help="models trained on the folder and in memory")
    p.add_argument("--skip-training", action="store_true")
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


def write_mnist_pngs(root, count):
    from PIL import Image

    from kzoo.data import load_dataset

    ds = load_dataset("mnist_embedded")
    for i in range(min(count, len(ds.x_train))):
        folder = os.path.join(root, str(ds.y_train[i]))
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(ds.x_train[i]).save(os.path.join(folder, f"{i:05d}.png"))


def kzoo_pass(folder, size, batch_size, workers=2):
    from kzoo.data.pipeline import ImageBatches, iterate

    batches = ImageBatches(folder.train, (size, size), folder.channels, batch_size, shuffle=True, augment=True,
                           flip=True, workers=workers)
    return sum(len(y) for _, y in iterate(batches))


def keras_pass(root, size, batch_size, channels):
    import keras

    ds = keras.utils.image_dataset_from_directory(root, image_size=(size, size), batch_size=batch_size,
                                                  color_mode="grayscale" if channels == 1 else "rgb",
                                                  shuffle=True, seed=0, verbose=False)
    return sum(int(y.shape[0]) for _, y in ds)


def pillow_pass(folder, size, batch_size):
    import numpy as np
    from PIL import Image

    from kzoo.data.pipeline import ImageBatches

    augment = ImageBatches(folder.train, (size, size), folder.channels, batch_size, augment=True, flip=True,
                           workers=0)._augment
    mode = "L" if folder.channels == 1 else "RGB"
    count = 0
    for start in range(0, len(folder.train), batch_size):
        batch = []
        for path in folder.train.paths[start:start + batch_size]:
            with Image.open(path) as image:
                image = image.convert(mode).resize((size, size), Image.BILINEAR)
                batch.append(np.asarray(image, dtype=np.uint8))
        x = np.stack(batch)[..., None].astype("float32") / 255 if folder.channels == 1 else \
            np.stack(batch).astype("float32") / 255
        augment(x, start // batch_size)
        count += len(batch)
    return count


def timed_rounds(readers, rounds):
    """Images/s of each reader: one untimed warm-up pass each, then ``rounds`` timed passes, interleaved (a load
    spike from other processes then hits every reader alike); the median pass counts."""
    import statistics

    for fn, args in readers.values():
        fn(*args)  # warm-up: imports, file cache, thread start
    rates = {name: [] for name in readers}
    for _ in range(rounds):
        for name, (fn, args) in readers.items():
            start = time.perf_counter()
            count = fn(*args)
            rates[name].append(count / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def train_rate(model, data, data_dir, out, epochs, batch_size, **extra):
    import csv

    import kzoo

    result = kzoo.train(model, data=data, data_dir=data_dir, epochs=epochs, batch_size=batch_size,
                        val_split=0.0, quiet=True, output=out, seed=0, **extra)
    import statistics

    rows = list(csv.DictReader(open(os.path.join(result["run_dir"], "metrics.csv"))))
    later = [float(row["samples_per_s"]) for row in rows[1:]] or [float(rows[-1]["samples_per_s"])]
    import yaml

    config = yaml.safe_load(open(os.path.join(result["run_dir"], "config.yaml")))
    return statistics.median(later), result["accuracy"], (config.get("data_folder") or {}).get("cache")


def train_comparison(model, root, work, args):
    """``model`` trained on the folder (streamed, and with the default cache) and on the same images in memory."""
    import numpy as np
    from PIL import Image

    runs = os.path.join(work, model)
    folder_rate, folder_acc, _ = train_rate(model, root, None, os.path.join(runs, "folder"), args.epochs,
                                            args.batch_size, cache="none")
    default_rate, _, chosen = train_rate(model, root, None, os.path.join(runs, "default"), args.epochs,
                                         args.batch_size)
    # the same images, same order, in memory: the folder run's own recorded training files
    files = json.load(open(os.path.join(runs, "folder", "data_files.json")))
    read = lambda rows: np.stack([np.asarray(Image.open(os.path.join(files["root"], p))) for p, _ in rows])  # noqa: E731
    labels = lambda rows: np.array([y for _, y in rows])  # noqa: E731
    npz = os.path.join(runs, "same.npz")
    np.savez(npz, x_train=read(files["train"]), y_train=labels(files["train"]), x_test=read(files["test"]),
             y_test=labels(files["test"]))
    memory_rate, memory_acc, _ = train_rate(model, "mnist", npz, os.path.join(runs, "memory"), args.epochs,
                                            args.batch_size)
    return {"train_samples_per_s": {"folder_streamed": folder_rate, "folder_default": default_rate,
                                    "memory": memory_rate},
            "default_cache": chosen,
            "streamed_vs_memory": round(folder_rate / memory_rate, 3),
            "default_vs_memory": round(default_rate / memory_rate, 3),
            "test_accuracy": {"folder": folder_acc, "memory": memory_acc}}


def main(argv=None):
    args = parse(argv)
    from kzoo.backend import set_backend

    backend = set_backend(None)

    from kzoo.data.image_folder import open_image_folder

    work = tempfile.mkdtemp(prefix="kzoo-bench-")
    root = args.folder or os.path.join(work, "mnist_png")
    if not args.folder:
        write_mnist_pngs(root, args.images)
    folder = open_image_folder(root, val_split=0, test_split=0)
    readers = {"kzoo": (kzoo_pass, (folder, args.size, args.batch_size, args.workers)),
               "pillow": (pillow_pass, (folder, args.size, args.batch_size))}
    try:
        import tensorflow  # noqa: F401  (image_dataset_from_directory needs it)

        readers["keras"] = (keras_pass, (root, args.size, args.batch_size, folder.channels))
    except ImportError as exc:
        print(f"keras.utils.image_dataset_from_directory skipped: {exc}", file=sys.stderr)
    rates = timed_rounds(readers, args.rounds)
    fastest_other = max(v for k, v in rates.items() if k != "kzoo")
    report = {"backend": backend, "images": len(folder.train), "size": args.size, "cpu_count": os.cpu_count(),
              "workers": args.workers, "rounds": args.rounds,
              "load_average": os.getloadavg(), "images_per_s": {k: round(v, 1) for k, v in rates.items()},
              "ratios_vs_kzoo": {k: round(rates["kzoo"] / v, 3) for k, v in rates.items() if k != "kzoo"},
              "kzoo_vs_fastest_other": round(rates["kzoo"] / fastest_other, 3)}
    if not args.skip_training:
        for model in args.models.split(","):
            report[model] = train_comparison(model, root, work, args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key}: {value}")
    print(f"ratio={report['kzoo_vs_fastest_other']}")


if __name__ == "__main__":
    main()
