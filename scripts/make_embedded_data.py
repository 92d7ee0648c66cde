"""Rebuild kzoo/data/embedded/ (mnist.npz, timemachine.txt) from the reference datasets.

Usage::

    python scripts/make_embedded_data.py [--source ../shared/datasets]

The source folder holds ``MD5SUMS``, ``mnist/`` (official test set, the first 10,000 training images, all
training labels) and ``timemachine/timemachine.txt`` (the Project Gutenberg file). Every input is checked
against ``MD5SUMS`` before anything is written; the script prints the md5 and size of what it wrote.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # build from this checkout, whichever kzoo is installed

from kzoo.data.text import strip_gutenberg  # noqa: E402
from kzoo.data.idx import read_idx  # noqa: E402

OUTPUT = ROOT / "kzoo" / "data" / "embedded"
INPUTS = (
    "mnist/train-images-idx3-ubyte-first10k.gz",
    "mnist/train-labels-idx1-ubyte.gz",
    "mnist/t10k-images-idx3-ubyte.gz",
    "mnist/t10k-labels-idx1-ubyte.gz",
    "timemachine/timemachine.txt",
)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def verify_inputs(source: Path) -> None:
    """Check every input against ``source/MD5SUMS``; exit with a message on the first mismatch."""
    sums = {}
    for line in (source / "MD5SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip()] = digest
    for name in INPUTS:
        if name not in sums:
            sys.exit(f"{source / 'MD5SUMS'} has no checksum for {name}.")
        actual = md5(source / name)
        if actual != sums[name]:
            sys.exit(f"{source / name}: md5 {actual}, MD5SUMS says {sums[name]}. Refusing to build.")
        print(f"ok  {sums[name]}  {name}")


def make_mnist(source: Path) -> Path:
    x_train = read_idx(source / "mnist/train-images-idx3-ubyte-first10k.gz", "images")
    y_train = read_idx(source / "mnist/train-labels-idx1-ubyte.gz", "labels")[:len(x_train)]
    x_test = read_idx(source / "mnist/t10k-images-idx3-ubyte.gz", "images")
    y_test = read_idx(source / "mnist/t10k-labels-idx1-ubyte.gz", "labels")
    assert x_train.shape == (10000, 28, 28) and x_test.shape == (10000, 28, 28), (x_train.shape, x_test.shape)
    assert len(y_train) == 10000 and len(y_test) == 10000
    out = OUTPUT / "mnist.npz"
    np.savez_compressed(out, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return out


def make_timemachine(source: Path) -> Path:
    raw = (source / "timemachine/timemachine.txt").read_bytes().decode("utf-8-sig")
    text = strip_gutenberg(raw.replace("\r\n", "\n"))
    assert text.startswith("The Time Machine") and "Gutenberg" not in text, text[:200]
    out = OUTPUT / "timemachine.txt"
    out.write_text(text + "\n", encoding="utf-8", newline="\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "datasets",
                        help="folder with MD5SUMS, mnist/ and timemachine/ (default: ../shared/datasets)")
    source = parser.parse_args().source
    verify_inputs(source)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for out in (make_mnist(source), make_timemachine(source)):
        print(f"wrote {md5(out)}  {out.relative_to(ROOT)}  ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
