"""Where a benchmark's figure comes from: the command, the commit, the machine, the run folder.

The benchmark scripts (``accuracy.py``, ``recipe_selection.py``) write a ``provenance.json`` into every run folder
they train, and :func:`run_row` reads a run folder back into one results row (``metrics.json`` for the test
figures, ``state.json`` for the validation value that picked the checkpoint, ``provenance.json``).
"""

import json
import os
import platform
import shlex
import subprocess

PROVENANCE = "provenance.json"
TEST_KEYS = ("accuracy", "macro_f1", "loss", "perplexity", "pair_accuracy", "bleu", "exact_match", "token_accuracy")


def commit():
    """``git rev-parse HEAD`` of this checkout, with ``+dirty`` when tracked files differ from it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*args):
        return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return f"{head}+dirty" if git("status", "--porcelain", "--untracked-files=no") else head


def machine():
    """What the run ran on, in words: processor and cores, or the GPU torch sees."""
    text = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    try:
        import torch

        if torch.cuda.is_available():
            text = f"{torch.cuda.get_device_name(0)}; {text}"
    except ImportError:
        pass
    try:
        text += f", load {os.getloadavg()[0]:.1f}"
    except OSError:
        pass
    return text


def train_command(kwargs):
    """The ``kzoo train`` command line equal to ``kzoo.train(**kwargs)``."""
    parts = ["kzoo", "train", kwargs["model"]]
    for key, value in kwargs.items():
        if key in ("model", "quiet", "options") or value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif value is not False:
            parts += [flag, str(value)]
    for key, value in (kwargs.get("options") or {}).items():
        value = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value).lower() \
            if isinstance(value, bool) else value
        parts += ["-o", f"{key}={value}"]
    return shlex.join(parts)


def write_provenance(run_dir, command, started, seconds, at_commit):
    """``provenance.json`` of a run; ``at_commit`` is :func:`commit` taken when its training started."""
    record = {"command": command, "commit": at_commit, "machine": machine(), "date": started,
              "seconds": round(seconds, 1)}
    with open(os.path.join(run_dir, PROVENANCE), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    return record


def run_row(run_dir):
    """One results row from a run folder: provenance, validation (monitor, best, best epoch) and test figures."""

    def read(name):
        path = os.path.join(run_dir, name)
        if not os.path.exists(path):
            return {}
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    state, metrics = read("state.json"), read("metrics.json")
    return {**read(PROVENANCE), "run": run_dir, "monitor": state.get("monitor"), "validation": state.get("best"),
            "best_epoch": state.get("best_epoch"), "split": metrics.get("split"),
            "test": {k: metrics[k] for k in TEST_KEYS if isinstance(metrics.get(k), (int, float))}}
