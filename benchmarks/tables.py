"""The measured tables of docs/benchmarks.md and docs/accuracy.md, rendered from their raw JSONL lines.

A table in a doc sits between ``<!-- table NAME -->`` and ``<!-- end table -->``; this script renders each one
from the results file named in :data:`TABLES`, so a doc's figure is always its raw line's. Rows are the last
line per key (a rerun replaces an earlier line); a line with ``"kept": false`` (a configuration measured and not
kept, its reason in ``notes``) is never shown.

    python benchmarks/tables.py            # print every table
    python benchmarks/tables.py --check    # exit 1 when a doc's table differs from its rendering
    python benchmarks/tables.py --write    # rewrite the docs' tables from the raw lines
"""

import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
MODELS = ("lenet5", "convnet2", "mlp", "lstm", "gru", "resnet18")
# (backend, engine) columns of the CPU ratio table; the first of each backend is what `kzoo train` uses
CPU_COLUMNS = (("torch", "torch"), ("torch", "fit"), ("tensorflow", "tf"), ("tensorflow", "fit"),
               ("tensorflow", "xla"), ("jax", "fit"))
DEFAULT_ENGINES = {("torch", "torch"), ("tensorflow", "tf"), ("jax", "fit")}
CPU_ROW_ORDER = (("torch", "torch"), ("tensorflow", "tf"), ("jax", "fit"), ("torch", "fit"),
                 ("tensorflow", "fit"), ("tensorflow", "xla"))


def read_jsonl(name):
    """The records of ``benchmarks/results/NAME``, each with its 1-based ``line``."""
    with open(os.path.join(RESULTS, name), encoding="utf-8") as handle:
        return [dict(json.loads(text), line=number) for number, text in enumerate(handle, 1) if text.strip()]


def latest(records, *keys):
    """The last kept record per value of ``keys`` (records without every key are skipped)."""
    found = {}
    for record in records:
        if record.get("kept", True) and all(k in record for k in keys):
            found[tuple(record[k] for k in keys)] = record
    return found


def _load(value):
    return str(round(value, 2))


def cpu_ratios():
    rows = latest(read_jsonl("cpu-2026-11-28.jsonl"), "model", "backend", "engine")
    header = " | ".join(f"{backend} `{engine}`" for backend, engine in CPU_COLUMNS)
    lines = [f"| model | {header} |", "|---|" + "---:|" * len(CPU_COLUMNS)]
    for model in MODELS:
        cells = []
        for column in CPU_COLUMNS:
            ratio = f"{rows[(model, *column)]['ratio']:.2f}"
            cells.append(f"**{ratio}**" if column in DEFAULT_ENGINES else ratio)
        lines.append(f"| {model} | {' | '.join(cells)} |")
    return lines


def cpu_rows():
    rows = latest(read_jsonl("cpu-2026-11-28.jsonl"), "model", "backend", "engine")
    lines = ["| model | backend | engine | steps per call | kzoo samples/s | native torch samples/s | ratio (median of "
             "rounds) | ratio of totals | peak RSS kzoo / native (MB) | load (1 min) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for backend, engine in CPU_ROW_ORDER:
        for model in MODELS:
            r = rows[(model, backend, engine)]
            lines.append(f"| {model} | {backend} | {engine} | {r['steps_per_call']} | {r['kzoo_samples_per_s']:,.0f} | "
                         f"{r['native_samples_per_s']:,.0f} | {r['ratio']:.2f} | {r['ratio_of_totals']:.2f} | "
                         f"{r['kzoo_peak_rss_mb']:.0f} / {r['native_peak_rss_mb']:.0f} | {_load(r['load_avg_1m'])} |")
    return lines


def cli_startup():
    record = [r for r in read_jsonl("cpu-2026-11-28.jsonl") if "kzoo --help" in r][-1]
    lines = ["| command | median | ratio to `python -c pass` |", "|---|---:|---:|"]
    for command in ("python -c pass", "kzoo --help", "kzoo list"):
        lines.append(f"| `{command}` | {1000 * record[command]['median_s']:.1f} ms | "
                     f"{record[command]['ratio_to_python']:.2f} |")
    return lines


def gpu_kzoo():
    rows = latest(read_jsonl("kzoo-h200-2026-12-04.jsonl"), "model", "backend", "engine")
    lines = ["| model | torch engine / native | jax `fit` / native |", "|---|---:|---:|"]
    for model in ("lenet5", "resnet18", "lstm"):
        cells = []
        for backend, engine in (("torch", "torch"), ("jax", "fit")):
            r = rows.get((model, backend, engine))
            cells.append("-" if r is None else f"{r['kzoo_samples_per_s']:,.0f} / {r['native_samples_per_s']:,.0f} "
                                               f"({r['ratio']:.2f})")
        lines.append(f"| {model} | {' | '.join(cells)} |")
    return lines


def recipe_selection(study):
    """One row per candidate: validation value (what chose), and test figures for the chosen one only."""

    def render():
        rows = [r for r in read_jsonl("recipe-selection-2026-12-04.jsonl") if r["study"] == study]
        monitor = rows[0]["monitor"]
        lines = [f"| candidate | command | {monitor} (best epoch) | test | time | commit | machine | run |",
                 "|---|---|---:|---|---:|---|---|---|"]
        for r in rows:
            test = "not read (not chosen)"
            if r["chosen"]:
                scores = ", ".join(f"{k} {v:.4f}" for k, v in r["test"].items() if k in ("accuracy", "perplexity",
                                                                                           "bleu", "exact_match"))
                test = f"**{scores}** (chosen)"
            label = f"**{r['candidate']}**" if r["chosen"] else r["candidate"]
            lines.append(f"| {label} | `{r['command']}` | {r['validation']:.4f} ({r['best_epoch']}) | {test} | "
                         f"{r['seconds']:.0f} s | {r['commit']} | {r['machine']} | `{r['run']}` |")
        return lines

    return render


def accuracy_rows(name):
    """One row per run of ``benchmarks/accuracy.py --jsonl``: test accuracy, validation, where it comes from."""

    def render():
        lines = ["| model | command | test accuracy | val accuracy (best epoch) | time | commit | machine | run |",
                 "|---|---|---:|---:|---:|---|---|---|"]
        for r in latest(read_jsonl(name), "key").values():
            lines.append(f"| {r['key']} | `{r['command']}` | **{r['test']['accuracy']:.4f}** | "
                         f"{r['validation']:.4f} ({r['best_epoch']}) | {r['seconds']:.0f} s | {r['commit']} | "
                         f"{r['machine']} | `{r['run']}` |")
        return lines

    return render


TABLES = {
    "docs/benchmarks.md": {"cpu-ratios": cpu_ratios, "cpu-rows": cpu_rows, "cli-startup": cli_startup,
                           "gpu-kzoo": gpu_kzoo},
    "docs/accuracy.md": {"selection-lstm": recipe_selection("lstm"),
                         "accuracy-fashion": accuracy_rows("accuracy-2026-12-04.jsonl")},
}
_BLOCK = re.compile(r"(<!-- table (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end table -->)", re.S)


def rendered(doc):
    """``{name: table text}`` of every table of ``doc`` (a path relative to the checkout)."""
    return {name: "\n".join(render()) + "\n" for name, render in TABLES[doc].items()}


def in_doc(doc):
    """``{name: table text}`` as the doc has it now."""
    with open(os.path.join(ROOT, doc), encoding="utf-8") as handle:
        return {m["name"]: m["body"] for m in _BLOCK.finditer(handle.read())}


def write(doc):
    path = os.path.join(ROOT, doc)
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    tables = rendered(doc)
    text = _BLOCK.sub(lambda m: m.group(1) + tables.get(m["name"], m["body"]) + m.group(4), text)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when a doc's table differs from its rendering")
    parser.add_argument("--write", action="store_true", help="rewrite the docs' tables")
    args = parser.parse_args(argv)
    status = 0
    for doc in TABLES:
        if args.write:
            write(doc)
        if args.check or args.write:
            have, want = in_doc(doc), rendered(doc)
            for name in want:
                if have.get(name) != want[name]:
                    print(f"{doc}: table {name} differs from its raw lines", file=sys.stderr)
                    status = 1
        else:
            for name, table in rendered(doc).items():
                print(f"{doc} / {name}:\n{table}")
    return status


if __name__ == "__main__":
    sys.exit(main())
