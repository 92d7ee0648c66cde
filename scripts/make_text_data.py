"""Rebuild kzoo/data/embedded/fra_eng.tsv.gz and sentiment.tsv.gz from the reference datasets.

Usage::

    python scripts/make_text_data.py [--source ../shared/datasets]

The source folder holds ``MD5SUMS``, ``fra-eng/fra.txt`` (Tatoeba English-French pairs, the Anki list) and
``sentiment-labelled-sentences/`` (the three UCI files). Every input is checked against ``MD5SUMS`` first.

* ``fra_eng.tsv.gz``: ``english<TAB>french<TAB>split``, every pair of ``fra.txt`` in its order, preprocessed
  by d2l's ``preprocess_nmt``; ``split`` is ``test`` for all pairs of 10% of the distinct English sentences
  (``kzoo.data.sentences.held_out``, seed 0), else ``train``.
* ``sentiment.tsv.gz``: ``text<TAB>label<TAB>origin<TAB>split``, the 3,000 sentences (trailing whitespace
  stripped; origin imdb, amazon or yelp); 20% held out per class by a seeded permutation.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # build from this checkout, whichever kzoo is installed

from kzoo.data.sentences import HELD_OUT, SPLIT_SEED, held_out, preprocess_nmt  # noqa: E402
from make_embedded_data import md5  # noqa: E402

OUTPUT = ROOT / "kzoo" / "data" / "embedded"
SENTIMENT = {"imdb": "imdb_labelled.txt", "amazon": "amazon_cells_labelled.txt", "yelp": "yelp_labelled.txt"}
INPUTS = ("fra-eng/fra.txt", *(f"sentiment-labelled-sentences/{name}" for name in SENTIMENT.values()))


def verify_inputs(source: Path) -> None:
    sums = dict(reversed(line.split(maxsplit=1)) for line in (source / "MD5SUMS").read_text().splitlines()
                if line.strip())
    sums = {name.strip(): digest for name, digest in sums.items()}
    for name in INPUTS:
        actual = md5(source / name)
        if sums.get(name) != actual:
            sys.exit(f"{source / name}: md5 {actual}, MD5SUMS says {sums.get(name)}. Refusing to build.")
        print(f"ok  {actual}  {name}")


def _write(out: Path, rows) -> Path:
    for row in rows:
        assert not any("\t" in cell or "\n" in cell for cell in row), row
    data = "".join("\t".join(row) + "\n" for row in rows).encode("utf-8")
    out.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    return out


def make_fra_eng(source: Path) -> Path:
    pairs = [line.split("\t")[:2] for line in (source / "fra-eng/fra.txt").read_text(encoding="utf-8").split("\n")
             if line.strip()]
    english = [preprocess_nmt(e) for e, _ in pairs]
    french = [preprocess_nmt(f) for _, f in pairs]
    test = held_out(english, HELD_OUT["fra_eng"], SPLIT_SEED)
    print(f"fra_eng: {len(pairs):,} pairs, {int(test.sum()):,} held out ({len(set(np.array(english)[test])):,} "
          f"English sentences)")
    return _write(OUTPUT / "fra_eng.tsv.gz",
                  [(e, f, "test" if t else "train") for e, f, t in zip(english, french, test)])


def make_sentiment(source: Path) -> Path:
    rows = []
    for origin, name in SENTIMENT.items():
        for line in (source / "sentiment-labelled-sentences" / name).read_text(encoding="utf-8").split("\n"):
            if line.strip():
                text, label = line.rsplit("\t", 1)
                rows.append([text.strip(), label.strip(), origin])
    labels = np.array([int(r[1]) for r in rows])
    test = np.zeros(len(rows), dtype=bool)
    rng = np.random.default_rng(SPLIT_SEED)
    for label in (0, 1):  # the same share of each class held out
        members = np.flatnonzero(labels == label)
        test[rng.permutation(members)[: int(round(len(members) * HELD_OUT["sentiment"]))]] = True
    print(f"sentiment: {len(rows):,} sentences, {int(test.sum())} held out")
    return _write(OUTPUT / "sentiment.tsv.gz", [(*r, "test" if t else "train") for r, t in zip(rows, test)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "datasets",
                        help="folder with MD5SUMS, fra-eng/ and sentiment-labelled-sentences/")
    source = parser.parse_args().source
    verify_inputs(source)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for out in (make_fra_eng(source), make_sentiment(source)):
        print(f"wrote {md5(out)}  {out.relative_to(ROOT)}  ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
