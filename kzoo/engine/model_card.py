"""A run's ``MODEL_CARD.md``: what was trained, on what, how, how well, where; and how its exports verified.

The trainer writes the card once training has ended and ``metrics.json`` holds the held-out evaluation
(:func:`write_model_card`); every figure in it is read from the run's own records (``config.yaml``,
``metrics.json``, ``state.json``, ``metrics.csv``, ``process.json``), and only what exists nowhere else comes
from memory: the parameter count and the data's digest. ``kzoo export`` appends a section per verified file
(:func:`append_export`). Both replace the card atomically.

The data digest is cheap whatever the data's size: the SHA-256 of the dataset's arrays (or text) as loaded,
before any ``--limit`` or split; for an image folder, of its recorded file list (every file's path, label, split
and size), without reading the pixels.
"""

import dataclasses
import hashlib
import json
import os

from kzoo.engine.checkpoints import atomic_write_text
from kzoo.engine.run_index import describe_run
from kzoo.engine.run_process import read_process
from kzoo.engine.runs import read_run_config, read_state

CARD = "MODEL_CARD.md"
EXPORTS_HEADING = "## Export verifications"
# config.yaml fields shown in a card section of their own, or that say where and how it ran rather than the recipe
_SHOWN = {"model", "data", "data_dir", "options", "optimizer", "lr", "schedule", "weight_decay", "epochs",
          "batch_size", "loss", "val_split", "test_split", "seed", "limit", "weights"}
_NOT_RECIPE = {"backend", "output", "quiet", "engine", "devices", "threads", "cache", "strict_data"}


def data_digest(dataset):
    """``(sha256, what it covers)`` of a loaded dataset (see the module docstring)."""
    digest = hashlib.sha256()
    file_lists = getattr(dataset, "file_lists", None)
    if callable(file_lists):  # an image folder: its file list with sizes, not its pixels
        record = file_lists()
        root = record.get("root") or ""
        for split in ("train", "val", "test"):
            for relative, label in record.get(split) or ():
                try:
                    size = os.path.getsize(os.path.join(root, relative))
                except OSError:
                    size = -1
                digest.update(json.dumps([split, relative, label, size]).encode())
        return digest.hexdigest(), "the file list: each file's path, label, split and size"
    parts = []
    fields = dataclasses.fields(dataset) if dataclasses.is_dataclass(dataset) else ()
    for field in fields:
        value = getattr(dataset, field.name)
        if isinstance(value, str) and field.name == "text":
            digest.update(value.encode("utf-8"))
            parts.append(field.name)
        elif hasattr(value, "dtype") and hasattr(value, "shape"):
            digest.update(f"{field.name}:{value.dtype.str}:{tuple(value.shape)}".encode())
            if value.dtype.kind == "O":  # strings as objects: their text, not their addresses
                for item in value.ravel():
                    digest.update(str(item).encode("utf-8") + b"\0")
            else:
                import numpy as np

                digest.update(np.ascontiguousarray(value).tobytes())
            parts.append(field.name)
    return digest.hexdigest(), f"the loaded {', '.join(parts) or 'nothing'}"


def _count(x):
    """Examples in one split as the trainer holds it (arrays, several input arrays, streamed batches), or the
    tokens of a token stream (a language model's training text)."""
    if x is None:
        return None
    if hasattr(x, "samples"):
        return f"{int(x.samples):,}"
    if isinstance(x, dict):
        x = next(iter(x.values()), None)
    elif isinstance(x, (list, tuple)) and x and hasattr(x[0], "shape"):
        x = x[0]
    if not hasattr(x, "shape") or not len(x.shape):
        return None
    return f"{int(x.shape[0]):,}" + (" tokens" if len(x.shape) == 1 and x.dtype.kind in "iu" else "")


def write_model_card(run_dir, model, dataset, prepared):
    """Write ``run_dir/MODEL_CARD.md`` at the end of training (after ``metrics.json``); returns its path."""
    config = read_run_config(run_dir) or {}
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    state = read_state(run_dir)
    row = describe_run(run_dir)
    record, _ = read_process(run_dir)
    trainable = sum(_size(w.shape) for w in model.trainable_weights)
    sha, covers = data_digest(dataset)
    counts = {name: _count(getattr(prepared, f"x_{name}")) for name in ("train", "val", "test")}
    lines = [f"# {config.get('model')} on {config.get('data')}", "",
             f"Written by kzoo {config.get('versions', {}).get('kzoo', '?')} when training ended, from the records "
             f"of this run folder (`config.yaml`, `metrics.json`, `state.json`, `process.json`).", ""]
    lines += _section("Model", [
        ("model", f"`{config.get('model')}` ({config.get('task_kind')})"),
        ("options", _mapping(config.get("options")) or "the defaults"),
        ("input shape", " x ".join(map(str, config.get("input_shape") or [])) or None),
        ("classes", _classes(config)),
        ("parameters", f"{model.count_params():,} ({trainable:,} trainable)"),
        ("started from", f"`{config['weights']}`" if config.get("weights") else "random initialization"),
        ("checkpoint", f"`best.keras`: epoch {state.get('best_epoch')} of {state['epochs_done']}, best "
                       f"{state.get('monitor')} {_fmt(state.get('best'))}" if state.get("best_epoch")
         else "`last.keras`"),
    ])
    folder = config.get("data_folder")
    lines += _section("Data", [
        ("dataset", f"`{config.get('data')}`" + (f" read from `{config['data_dir']}`" if config.get("data_dir")
                                                 else "")),
        ("image folder", f"`{folder['root']}` ({folder.get('layout')} layout, {folder.get('skipped_images', 0)} "
                         f"unreadable images skipped); file lists in `data_files.json`" if folder else None),
        ("sha256", f"`{sha}` ({covers})"),
        ("split", ", ".join(f"{name} {n}" for name, n in zip(("train", "validation", "test"), counts.values())
                            if n is not None)
         + f" (val_split {config.get('val_split')}, test_split {config.get('test_split')}, seed {config.get('seed')}"
         + (f", --limit {config['limit']}" if config.get("limit") else "") + ")"),
    ])
    lines += _section("Recipe", [
        ("optimizer", f"{config.get('optimizer')}, lr {config.get('lr')}, {config.get('schedule')} schedule, "
                      f"weight decay {config.get('weight_decay')}"),
        ("epochs", f"{state['epochs_done']} done of {config.get('epochs')} asked, batch {config.get('batch_size')}"),
        ("loss", config.get("loss")),
        ("other options", _mapping(_recipe_options(config)) or "none"),
        ("command", f"`{record['command']}`" if record and record.get("command") else None),
    ])
    lines += ["## Held-out metrics", "", f"Measured on {report.get('split', 'test')} "
              f"({report.get('samples', counts['test'])} samples) with the best checkpoint.", "",
              "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in report.items()
              if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("samples", "best_epoch",
                                                                                       "epochs_done")]
    lines.append("")
    env = config.get("machine") or {}
    lines += _section("Hardware and time", [
        ("backend", f"{config.get('backend')}, {config.get('engine_used')} engine, {config.get('dtype_policy')}, "
                    f"{config.get('world_size') or 1} device(s), {config.get('threads_used') or '-'} thread(s)"),
        ("machine", f"{env.get('platform')}, {env.get('processor')}, {env.get('cpu_count')} CPUs, accelerator "
                    f"{env.get('accelerator')}"),
        ("versions", ", ".join(f"{k} {v}" for k, v in (config.get("versions") or {}).items())
         + f", python {config.get('python')}"),
        ("training time", f"{row['train_s']} s in epochs" + (f", {row['wall_s']} s wall in "
                                                              f"{record.get('sessions', 1)} session(s)"
                                                              if row["wall_s"] is not None else "")),
        ("trained", f"{record.get('created')} to {_iso_now()} on {record.get('host')}" if record else None),
    ])
    lines += [EXPORTS_HEADING, "", "None yet: `kzoo export` adds one entry per verified file.", ""]
    path = os.path.join(run_dir, CARD)
    atomic_write_text(path, "\n".join(lines))
    return path


def append_export(run_dir, result):
    """Add the verification of an exported file (:func:`kzoo.export.export`'s result) to the run's card.

    A run without a card (it did not finish, or an older kzoo trained it) gets one holding this section only.
    """
    path = os.path.join(run_dir, CARD)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    else:
        config = read_run_config(run_dir) or {}
        text = (f"# {config.get('model')} on {config.get('data')}\n\nThis run has no training card: it did not "
                f"finish, or a kzoo older than model cards trained it (`kzoo runs` says which).\n")
    placeholder = "None yet: `kzoo export` adds one entry per verified file.\n"
    if EXPORTS_HEADING not in text:
        text = text.rstrip("\n") + f"\n\n{EXPORTS_HEADING}\n\n"
    text = text.replace(placeholder, "")
    agreement = result.get("top1_agreement")
    rule = (f"top-1 agreement >= {100 * result['min_agreement']:g}% ({result['quantize']})" if result.get("quantize")
            else f"max abs diff <= {result.get('tolerance')}")
    entry = [f"### {result['format']}: `{result['path']}`", "",
             f"Exported {_iso_now()} from `{os.path.basename(result.get('source', ''))}` and verified in its own "
             f"runtime against the Keras model: {'passed' if result.get('ok') else 'FAILED'}.", "",
             "| | |", "|---|---|",
             f"| max abs diff | {result.get('max_abs_diff', float('nan')):.3g} |",
             f"| top-1 agreement | {'-' if agreement is None else f'{100 * agreement:.2f}%'} |",
             f"| samples | {result.get('samples')} |",
             f"| rule | {rule} |",
             f"| verified on | {_cell(result.get('verification_data') or '-')} |"]
    calibrated = ((result.get("metadata") or {}).get("quantization") or {}).get("calibration_data")
    if calibrated:
        entry.append(f"| calibrated on | {_cell(calibrated)} |")
    atomic_write_text(path, text.rstrip("\n") + "\n\n" + "\n".join(entry) + "\n")
    return path


def _section(title, rows):
    lines = [f"## {title}", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {_cell(value)} |" for name, value in rows if value is not None]
    return lines + [""]


def _cell(value):
    """A value that cannot end its Markdown table cell early."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _recipe_options(config):
    """Recipe settings other than those the card names, where they differ from the training defaults."""
    from kzoo.engine.config import DEFAULTS, FIELDS

    return {k: v for k, v in config.items() if k in FIELDS and k not in _SHOWN | _NOT_RECIPE
            and v not in (None, False) and v != DEFAULTS.get(k, None)}


def _mapping(values):
    return ", ".join(f"{k}={v}" for k, v in (values or {}).items())


def _classes(config):
    names = config.get("class_names")
    if not config.get("num_classes"):
        return None
    shown = f": {', '.join(map(str, names[:12]))}{', ...' if len(names) > 12 else ''}" if names else ""
    return f"{config['num_classes']}{shown}"


def _size(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:,.1f}"
    return "-" if value is None else str(value)


def _iso_now():
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
