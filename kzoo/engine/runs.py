"""A run folder on disk: claimed by one run only, committed epoch by epoch, recovered after a crash.

After each completed epoch :func:`commit_epoch` writes, in this order:

1. the new ``last.keras`` and ``last.weights.h5`` (flushed temporary files; the weights are the archive's own);
2. the current ``last`` pair is renamed to ``.last.prev.*`` and the new pair renamed into place (then ``best``
   likewise, from the same files, when the epoch improved on the monitored value);
3. ``metrics.csv`` with one row per completed epoch;
4. ``state.json``: the commit record. It names the epochs done and the SHA-256 of each ``last``/``best`` file;
5. the ``.prev`` files are removed.

A process killed anywhere in between leaves a folder that :func:`recover` brings back to the last commit: each
checkpoint file is whichever of ``name`` and ``.name.prev`` has the digest ``state.json`` records, ``metrics.csv``
keeps the rows of committed epochs only, and temporary files are removed. ``last`` is therefore always the end of
a completed epoch. A Ctrl-C writes ``interrupted.keras``/``.weights.h5`` (the weights at that moment, for
``evaluate`` and ``predict``) without touching ``last``; ``--resume`` starts again from ``last``.

The run's ``config.yaml`` (its options, data, task and vocabularies) is written and read here too, for the
trainer and for every command that uses a run (evaluate, predict, generate, export).
"""

import csv
import io
import json
import os
import re
import shutil

from kzoo.engine.checkpoints import (TEMPORARY_PREFIX, atomic_write_text, file_digest, install,
                                     write_checkpoint_pair, write_durably)
from kzoo.errors import CheckpointError, KzooError

SLOTS = ("last", "best")
KINDS = (".keras", ".weights.h5")
STATE = "state.json"
CONFIG = "config.yaml"
METRICS = "metrics.csv"


def _previous(run_dir, name):
    return os.path.join(run_dir, f".{name}.prev")


def claim_run_dir(model, data, root="runs"):
    """Create ``root/<model>-<data>-<n>`` with the first free ``n``; two runs never get the same folder.

    ``os.mkdir`` fails when the folder exists, so a run that loses the race takes the next number.
    """
    stem = re.sub(r"[^\w.-]+", "_", f"{model}-{data}")
    os.makedirs(root, exist_ok=True)
    taken = {int(m.group(1)) for name in os.listdir(root) if (m := re.fullmatch(re.escape(stem) + r"-(\d+)", name))}
    n = 1
    while True:
        while n in taken:
            n += 1
        path = os.path.join(root, f"{stem}-{n}")
        try:
            os.mkdir(path)
        except FileExistsError:
            taken.add(n)
            continue
        claim_output_dir(path)
        return path


def claim_output_dir(path):
    """Claim ``path`` (created if needed) for a new run: its ``config.yaml`` is created exclusively.

    Raises:
        KzooError: the folder already holds a run (or another run claimed it first).
    """
    os.makedirs(path, exist_ok=True)
    try:
        os.close(os.open(os.path.join(path, CONFIG), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        raise KzooError(f"{path} already holds a run; resume it with --resume {path} or choose another "
                        f"--output.") from None
    return path


def run_dir_of(path):
    """The run folder of ``path``: the folder itself, or the folder a checkpoint file lies in."""
    return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


def read_run_config(run_dir):
    """The run's ``config.yaml`` as a dict, or ``None`` when it has none (or an empty one: a claimed folder)."""
    import yaml

    path = os.path.join(run_dir, CONFIG)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def write_run_config(run_dir, data):
    """Replace the run's ``config.yaml`` with ``data``, atomically and durably, in the order given."""
    import yaml

    atomic_write_text(os.path.join(run_dir, CONFIG), yaml.safe_dump(data, sort_keys=False))


def read_state(run_dir):
    """The committed state (``epochs_done``, ``best``, ``best_epoch``, checkpoint digests); nothing committed: 0."""
    path = os.path.join(run_dir, STATE)
    if not os.path.exists(path):
        return {"epochs_done": 0, "best": None, "best_epoch": None}
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except ValueError as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); the run cannot be resumed.") from None
    if not isinstance(state, dict) or not isinstance(state.get("epochs_done"), int):
        raise CheckpointError(f"{path} has no epochs_done count; the run cannot be resumed.")
    return state


def write_state(run_dir, state):
    atomic_write_text(os.path.join(run_dir, STATE), json.dumps(state, indent=2) + "\n")


def read_metrics(run_dir, epochs_done):
    """The ``metrics.csv`` rows of the first ``epochs_done`` epochs, one per epoch (the latest row of each)."""
    path = os.path.join(run_dir, METRICS)
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = {}
        for row in csv.DictReader(handle):
            try:
                epoch = int(row.get("epoch") or "")
            except ValueError:  # a torn last line
                continue
            if 0 <= epoch < epochs_done:
                rows[epoch] = row
    return [rows[e] for e in sorted(rows)]


def write_metrics(run_dir, rows):
    """``metrics.csv``: ``epoch`` (from 0) and the epoch logs in name order, as ``keras.callbacks.CSVLogger``."""
    keys = sorted({k for row in rows for k in row} - {"epoch"})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["epoch", *keys], restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(os.path.join(run_dir, METRICS), out.getvalue())


def _digests(run_dir, slot):
    return {slot + kind: file_digest(os.path.join(run_dir, slot + kind)) for kind in KINDS}


def _replace_slot(run_dir, slot, new_files):
    """Move the slot's current files aside (``.prev``) and rename the new ones into place."""
    for kind, tmp in zip(KINDS, new_files):
        path = os.path.join(run_dir, slot + kind)
        if os.path.exists(path):
            os.replace(path, _previous(run_dir, slot + kind))
        install(tmp, path)


def _link_or_copy(source, path):
    """A flushed temporary name next to ``path`` with ``source``'s content (a hard link: no copy, no space)."""
    def write(tmp):
        try:
            os.link(source, tmp)
        except OSError:  # a file system without hard links
            shutil.copyfile(source, tmp)

    return write_durably(path, write)


def commit_epoch(run_dir, model, state, row, improved, best_weights=None):
    """Write the checkpoints and metrics of a completed epoch, then ``state.json``; return the new state.

    Args:
        best_weights: ``None`` (``best`` is a link to ``last``), or a function that returns a context in which
            ``model`` holds the weights ``best`` records (the moving averages of the weights, ``--ema``).
        state: the committed state before this epoch (not modified).
        row: this epoch's logs with ``epoch`` (from 0) for ``metrics.csv``.
        improved: whether this epoch becomes ``best`` (its ``best``/``best_epoch`` are already in ``state``).
    """
    epochs_done = row["epoch"] + 1
    new = write_checkpoint_pair(model, os.path.join(run_dir, "last.keras"), os.path.join(run_dir, "last.weights.h5"))
    _replace_slot(run_dir, "last", new)
    checkpoints = dict(state.get("checkpoints") or {})
    checkpoints["last"] = {"epoch": epochs_done, **_digests(run_dir, "last")}
    if improved and best_weights is not None:
        with best_weights():
            written = write_checkpoint_pair(model, os.path.join(run_dir, "best.keras"),
                                            os.path.join(run_dir, "best.weights.h5"))
        _replace_slot(run_dir, "best", written)
        checkpoints["best"] = {"epoch": epochs_done, **_digests(run_dir, "best")}
    elif improved:
        copies = [_link_or_copy(os.path.join(run_dir, "last" + kind), os.path.join(run_dir, "best" + kind))
                  for kind in KINDS]
        _replace_slot(run_dir, "best", copies)
        checkpoints["best"] = {"epoch": epochs_done, **{"best" + k: checkpoints["last"]["last" + k] for k in KINDS}}
    write_metrics(run_dir, read_metrics(run_dir, epochs_done - 1) + [row])
    committed = {k: v for k, v in state.items() if k != "interrupted"}
    committed.update(epochs_done=epochs_done, checkpoints=checkpoints)
    write_state(run_dir, committed)
    _remove_leftovers(run_dir)
    for kind in KINDS:  # an interrupt before this epoch is stale now
        _remove(os.path.join(run_dir, "interrupted" + kind))
    return committed


def save_interrupted(run_dir, model):
    """Ctrl-C: the weights as they are now into ``interrupted.*``; ``last`` and the committed epoch stay."""
    new = write_checkpoint_pair(model, os.path.join(run_dir, "interrupted.keras"),
                                os.path.join(run_dir, "interrupted.weights.h5"))
    for kind, tmp in zip(KINDS, new):
        install(tmp, os.path.join(run_dir, "interrupted" + kind))
    state = read_state(run_dir)  # what is on disk: a Ctrl-C may have stopped a commit half-way
    marked = dict(state, interrupted={"during_epoch": state["epochs_done"] + 1})
    write_state(run_dir, marked)
    return marked


def recover(run_dir):
    """Bring a run folder back to its last commit (see the module docstring); return the committed state.

    Raises:
        CheckpointError: a committed checkpoint file is missing or altered, and no ``.prev`` copy matches.
    """
    state = read_state(run_dir)
    recorded = state.get("checkpoints")
    for slot in SLOTS:
        files = recorded.get(slot) if recorded else None
        for kind in KINDS:
            name = slot + kind
            path, previous = os.path.join(run_dir, name), _previous(run_dir, name)
            if files is None:
                if recorded is not None or state["epochs_done"] == 0:
                    _remove(path)  # written by an epoch that was never committed
                continue
            if os.path.exists(path) and file_digest(path) == files[name]:
                continue
            if os.path.exists(previous) and file_digest(previous) == files[name]:
                os.replace(previous, path)
                continue
            raise CheckpointError(f"{path} is not the file {STATE} records for epoch {files['epoch']} (missing or "
                                  f"changed since); the run cannot be resumed from it.")
    _remove_leftovers(run_dir)
    write_metrics(run_dir, read_metrics(run_dir, state["epochs_done"]))
    return state


def _remove(path):
    if os.path.exists(path):
        os.unlink(path)


def _remove_leftovers(run_dir):
    """``.prev`` files of the last commit and temporary files of writes that never finished."""
    for name in os.listdir(run_dir):
        if name.startswith(TEMPORARY_PREFIX) or (name.startswith(".") and name.endswith(".prev")):
            _remove(os.path.join(run_dir, name))
