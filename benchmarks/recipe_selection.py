"""Choose a model's recipe on the validation split only, then measure the test split once.

Each candidate recipe of a study is trained through ``kzoo.train`` exactly as ``kzoo train`` runs it (same data,
same seed, same validation split, so their validation figures compare). The winner is the candidate with the
best *validation* value of the run's own monitor (``state.json``: ``best`` of ``monitor``, the value that picked
its best checkpoint). Only then is a test figure read, and only the winner's (``metrics.json``). ``kzoo train``
evaluates the test split at the end of every run, so the other candidates' ``metrics.json`` exist too; this
script never opens them, and the selection record says so.

Every run folder gets a ``provenance.json`` (command, commit, machine, date; :mod:`provenance`), and
``--jsonl`` rows carry them into the tables of docs/accuracy.md (``benchmarks/tables.py``). Nothing here knows
about devices: on a GPU machine ``kzoo.train`` uses the GPU, so the expensive studies (translation, captioning)
run there unchanged:

    python benchmarks/recipe_selection.py lstm --output-root runs/selection
    python benchmarks/recipe_selection.py nin --data-dir ../shared/datasets/fashion-mnist
    python benchmarks/recipe_selection.py seq2seq_attention --data-dir ../shared/datasets/fra-eng --backend torch
    python benchmarks/recipe_selection.py lstm --candidates 2x192-raw,2x192-input-norm --jsonl rows.jsonl

The last line of output is the selection as JSON; ``--jsonl`` appends one row per candidate (validation value
for all, test figures for the winner only) to a results file.
"""

import argparse
import json
import os
import sys
import time

from provenance import TEST_KEYS, commit, train_command, write_provenance

# study -> the settings every candidate shares, and the candidates (label -> kzoo.train keyword arguments).
# Candidates must share data, seed and validation split: a different val_split would score on other examples.
STUDIES = {
    # docs/accuracy.md, Sequential MNIST: the recipe search once read test accuracy; these are its candidates
    "lstm": {
        "base": {"model": "lstm", "data": "mnist_embedded", "epochs": 3, "seed": 0},
        "candidates": {
            "1x128-raw": {"options": {"num_layers": 1, "units": 128, "input_norm": False}},
            "2x192-raw": {"options": {"num_layers": 2, "units": 192, "input_norm": False}},
            "2x192-raw-augment": {"options": {"num_layers": 2, "units": 192, "input_norm": False}, "augment": True},
            "2x192-raw-dropout0.2": {"options": {"num_layers": 2, "units": 192, "input_norm": False,
                                                 "dropout": 0.2}},
            "2x192-input-norm": {"options": {"num_layers": 2, "units": 192, "input_norm": True}},
        },
    },
    # docs/accuracy.md, Fashion-MNIST per model: NiN's learning rate (the first 10,000 training images, 3 epochs)
    "nin": {
        "base": {"model": "nin", "data": "fashion_mnist", "limit": 10000, "epochs": 3, "seed": 0},
        "candidates": {"adam-1e-3": {"lr": 1e-3}, "adam-3e-4": {"lr": 3e-4}, "adam-1e-4": {"lr": 1e-4}},
    },
    # docs/accuracy.md, translation table (2026-12-03): encoder and epoch count; hours on 2 CPU cores, minutes on
    # a GPU
    "seq2seq_attention": {
        "base": {"model": "seq2seq_attention", "data": "fra_eng", "seed": 0},
        "candidates": {
            "oneway-12ep": {"epochs": 12, "options": {"num_layers": 1, "bidirectional_encoder": False}},
            "oneway-dropout0.3-20ep": {"epochs": 20, "options": {"num_layers": 1, "bidirectional_encoder": False,
                                                                 "dropout": 0.3}},
            "oneway-batch64-12ep": {"epochs": 12, "batch_size": 64,
                                    "options": {"num_layers": 1, "bidirectional_encoder": False}},
            "bidirectional-12ep": {"epochs": 12, "options": {"num_layers": 1, "bidirectional_encoder": True}},
            "bidirectional-8ep": {"epochs": 8, "options": {"num_layers": 1, "bidirectional_encoder": True}},
            "bidirectional-7ep": {"epochs": 7, "options": {"num_layers": 1, "bidirectional_encoder": True}},
        },
    },
    # docs/accuracy.md, captioning table (2026-12-02): encoder width, dropout, epochs
    "captioner": {
        "base": {"model": "captioner", "data": "digit_captions", "seed": 0},
        "candidates": {
            "8-16-32-dropout0-8ep": {"epochs": 8, "options": {"filters": [8, 16, 32], "dropout": 0.0}},
            "16-32-32-dropout0.3-8ep": {"epochs": 8, "options": {"filters": [16, 32, 32], "dropout": 0.3}},
            "16-32-32-dropout0.4-8ep": {"epochs": 8, "options": {"filters": [16, 32, 32], "dropout": 0.4}},
            "8-16-32-dropout0.3-12ep": {"epochs": 12, "options": {"filters": [8, 16, 32], "dropout": 0.3}},
        },
    },
}


def validation_of(run_dir):
    """``(monitor, best value, best epoch)`` from the run's ``state.json`` (what picked its checkpoint)."""
    with open(os.path.join(run_dir, "state.json"), encoding="utf-8") as handle:
        state = json.load(handle)
    return state["monitor"], state["best"], state["best_epoch"]


def better(monitor, a, b):
    """Whether validation value ``a`` beats ``b`` for ``monitor`` (losses and perplexities: lower)."""
    lower = "loss" in monitor or "perplexity" in monitor
    return a < b if lower else a > b


def select(study, *, candidates=None, output_root="runs/selection", overrides=None, jsonl=None):
    """Train the candidates of ``study``, choose by validation, read the winner's test figures only."""
    import kzoo

    plan = STUDIES[study]
    chosen_labels = candidates or list(plan["candidates"])
    unknown = [c for c in chosen_labels if c not in plan["candidates"]]
    if unknown:
        raise SystemExit(f"Error: unknown candidates {unknown} for {study}; known: {list(plan['candidates'])}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows = []
    for label in chosen_labels:
        kwargs = {**plan["base"], **plan["candidates"][label], **(overrides or {})}
        kwargs["options"] = {**plan["base"].get("options", {}), **plan["candidates"][label].get("options", {})}
        kwargs["output"] = os.path.join(output_root, f"{study}-{stamp}", label)
        command = train_command(kwargs)
        print(f"[{study}] {label}: {command}", flush=True)
        started, clock, at_commit = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.perf_counter(), commit()
        result = kzoo.train(quiet=True, **kwargs)
        provenance = write_provenance(result["run_dir"], command, started, time.perf_counter() - clock, at_commit)
        monitor, value, epoch = validation_of(result["run_dir"])
        rows.append({"study": study, "candidate": label, "monitor": monitor, "validation": value,
                     "best_epoch": epoch, "run": result["run_dir"], **provenance})
        print(f"[{study}] {label}: {monitor} {value:.4f} (epoch {epoch}) in {provenance['seconds']} s", flush=True)
    winner = rows[0]
    for row in rows[1:]:
        if better(row["monitor"], row["validation"], winner["validation"]):
            winner = row
    with open(os.path.join(winner["run"], "metrics.json"), encoding="utf-8") as handle:  # the one test read
        metrics = json.load(handle)
    test = {k: metrics[k] for k in TEST_KEYS if isinstance(metrics.get(k), (int, float))}
    for row in rows:
        row["chosen"] = row is winner
        row["test"] = dict(test, split=metrics.get("split")) if row is winner else None
    selection = {"study": study, "chosen": winner["candidate"], "chosen_by": winner["monitor"],
                 "test_read_for": "the chosen candidate only", "rows": rows}
    with open(os.path.join(output_root, f"{study}-{stamp}", "selection.json"), "w", encoding="utf-8") as handle:
        json.dump(selection, handle, indent=2)
    if jsonl:
        with open(jsonl, "a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
    return selection


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=sorted(STUDIES))
    parser.add_argument("--candidates", default=None, help="comma-separated labels (default: all of the study)")
    parser.add_argument("--output-root", default="runs/selection")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--backend", default=None)
    parser.add_argument("--limit", type=int, default=None, help="override the study's training subset")
    parser.add_argument("--epochs", type=int, default=None, help="override every candidate's epochs (smoke tests)")
    parser.add_argument("--jsonl", default=None, help="append one row per candidate to this file")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("data_dir", args.data_dir), ("backend", args.backend), ("limit", args.limit),
                                   ("epochs", args.epochs)) if v is not None}
    selection = select(args.study, candidates=args.candidates.split(",") if args.candidates else None,
                       output_root=args.output_root, overrides=overrides, jsonl=args.jsonl)
    print(json.dumps(selection), flush=True)


if __name__ == "__main__":
    sys.exit(main())
