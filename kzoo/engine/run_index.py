"""Run folders listed and compared (``kzoo runs``, ``kzoo runs compare``), from their files alone.

    from kzoo.engine.run_index import compare_runs, list_runs
    list_runs("runs", model="resnet*", status="finished", sort="test", reverse=True)
    compare_runs(["runs/lenet5-mnist-1", "runs/lenet5-mnist-2"], png="compare.png")

A run's status is read, never guessed:

- ``running``: a live process holds the lock on the run's ``process.json`` (:mod:`kzoo.engine.run_process`);
- ``finished``: the latest training session ended well, and ``metrics.json`` (the final test evaluation) covers
  every epoch ``state.json`` commits;
- ``failed``: the latest session recorded an error (a diverged loss, an out-of-memory error, ...);
- ``interrupted``: Ctrl-C (``state.json`` or the process record says so), or the process that held the lock is
  gone without a word (killed, crashed, the machine went down);
- ``unknown``: not finished, and nothing says whether it still runs (a folder trained by a kzoo older than the
  process record);
- ``broken``: not a run folder, or one whose records cannot be read; the reason says which.

Reading imports neither Keras nor a framework (``compare_runs(png=...)`` imports matplotlib), so listing a
hundred runs takes a moment, and a folder that is being written to is read as it stands: every file a run
commits is renamed into place whole.
"""

import csv
import datetime
import fnmatch
import json
import os
import stat

from kzoo.engine.run_process import read_process
from kzoo.engine.runs import CONFIG, METRICS, STATE, read_run_config, read_state
from kzoo.errors import CheckpointError, KzooError, first_line

STATUSES = ("running", "finished", "interrupted", "failed", "unknown", "broken")
# the test metric a run is known by, as the trainer prints it: the first its metrics.json has
HEADLINE = ("accuracy", "perplexity", "pair_accuracy", "bleu", "exact_match", "loss")
COLUMNS = ("name", "path", "status", "reason", "model", "data", "task", "backend", "engine", "devices",
           "epochs_done", "epochs", "monitor", "best", "best_epoch", "test_metric", "test", "test_split",
           "wall_s", "train_s", "date")
SORT_KEYS = ("name", "status", "model", "data", "backend", "engine", "devices", "epochs", "best", "test", "wall",
             "date")
# metrics.csv columns that are not curves of their own (val_* curves are drawn with their training twin)
_NOT_CURVES = {"epoch", "epoch_time", "samples_per_s", "lr"}
_COMPARE_IGNORED = {"output"}  # a run's own folder differs by definition
_MISSING = object()


class _Broken(Exception):
    """A run folder whose records cannot be read; the message is the reason shown."""


def describe_run(path):
    """One run folder as a row of :data:`COLUMNS` (missing values ``None``); never raises for a bad folder."""
    path = os.fspath(path)
    row = dict.fromkeys(COLUMNS)
    row.update(name=os.path.basename(os.path.normpath(path)), path=path)
    try:
        _describe(path, row)
    except _Broken as exc:
        row.update(status="broken", reason=str(exc))
    except OSError as exc:
        row.update(status="broken", reason=f"unreadable: {exc.strerror or exc}")
    return row


def _describe(path, row):
    if not stat.S_ISDIR(os.stat(path).st_mode):  # os.stat: a folder that cannot be looked at says why
        raise _Broken("not a folder")
    record, live = read_process(path)
    if not os.path.exists(os.path.join(path, CONFIG)):
        if any(os.path.exists(os.path.join(path, name)) for name in (STATE, "last.keras", "best.keras")):
            raise _Broken("no config.yaml: its options are lost, so it cannot be resumed, evaluated or exported")
        raise _Broken("not a kzoo run folder (no config.yaml)")
    try:
        config = read_run_config(path)
    except Exception as exc:  # yaml's errors (several lines: what, where), undecodable bytes
        raise _Broken(f"config.yaml cannot be read: {' '.join(str(exc).split())[:160]}") from None
    if config is None:  # claimed, and nothing written yet
        if live:
            row.update(status="running", reason=f"starting ({_who(record)})")
            return
        raise _Broken("claimed but never started: config.yaml is empty")
    if not isinstance(config, dict):
        raise _Broken(f"config.yaml holds a {type(config).__name__}, not a mapping of options")
    row.update(model=config.get("model"), data=config.get("data"), task=config.get("task_kind"),
               backend=config.get("backend"), engine=config.get("engine_used") or config.get("engine"),
               devices=config.get("world_size") or 1, epochs=config.get("epochs"))
    row["date"] = (record or {}).get("created") or _iso(os.path.getmtime(os.path.join(path, CONFIG)))
    rows = _metrics_rows(path)
    row["train_s"] = round(sum(_number(r.get("epoch_time")) or 0.0 for r in rows), 1) if rows else None
    if record and isinstance(record.get("wall_s"), (int, float)) and (live or "ended" in record):
        # a session killed before it could record its end has no known wall time: train_s stands in
        row["wall_s"] = round(record["wall_s"] + (_seconds_since(record.get("started")) if live else 0.0), 1)
    try:
        state = read_state(path)
    except CheckpointError as exc:
        raise _Broken(first_line(exc)) from None
    row.update(epochs_done=state["epochs_done"], monitor=state.get("monitor"), best=state.get("best"),
               best_epoch=state.get("best_epoch"))
    report = _read_json(os.path.join(path, "metrics.json"))
    if report is not None:
        metric = next((k for k in HEADLINE if isinstance(report.get(k), (int, float))), None)
        row.update(test_metric=metric, test=report.get(metric) if metric else None, test_split=report.get("split"))
    row["status"], row["reason"] = _status(state, report, record, live)


def _status(state, report, record, live):
    """The process record speaks for the latest session; without one (an older kzoo), the files alone."""
    done = state["epochs_done"]
    outcome = (record or {}).get("outcome")
    covered = report is not None and report.get("epochs_done", done) == done
    if live:
        return "running", f"{_who(record)}, epoch {done + 1}"
    if outcome == "failed":
        return "failed", record.get("reason") or "the training process recorded an error"
    if outcome == "interrupted" or (state.get("interrupted") and outcome != "finished"):
        during = (state.get("interrupted") or {}).get("during_epoch", done + 1)
        return "interrupted", f"Ctrl-C during epoch {during}; kzoo train --resume continues from epoch {done}"
    if outcome == "finished" or (record is None and covered):
        if not covered:
            raise _Broken("process.json says training finished, but metrics.json does not cover its "
                          f"{done} epochs")
        return "finished", None
    if record is not None:
        if live is None:
            return "unknown", f"{_who(record)} left no outcome; whether it runs cannot be told on this system"
        return "interrupted", f"{_who(record)} stopped without finishing (killed or crashed) after epoch {done}"
    return "unknown", ("not finished, and no process record says whether it runs (an older kzoo trained it, or "
                       "it is starting)")


def _who(record):
    record = record or {}
    return f"process {record.get('pid', '?')} on {record.get('host', '?')}"


def _read_json(path):
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except ValueError as exc:
        raise _Broken(f"{os.path.basename(path)} is not valid JSON ({first_line(exc)})") from None
    if not isinstance(data, dict):
        raise _Broken(f"{os.path.basename(path)} holds a {type(data).__name__}, not a mapping")
    return data


def _metrics_rows(path):
    """``metrics.csv`` as it stands (committed rows; a folder never committed to has none)."""
    try:
        with open(os.path.join(path, METRICS), newline="", encoding="utf-8") as handle:
            return [row for row in csv.DictReader(handle) if _number(row.get("epoch")) is not None]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _number(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN: no value


def _iso(timestamp):
    return datetime.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")


def _timestamp(iso):
    try:
        return datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except (TypeError, ValueError):
        return None


def _seconds_since(iso):
    start = _timestamp(iso)
    return max(0.0, datetime.datetime.now().timestamp() - start) if start is not None else 0.0


def is_run_folder(path):
    """Whether ``path`` looks like one run (rather than a folder of runs)."""
    return any(os.path.exists(os.path.join(path, name)) for name in (CONFIG, STATE))


def list_runs(root="runs", *, model=None, data=None, status=None, backend=None, sort="date", reverse=False):
    """Every run folder in ``root`` (or ``root`` itself when it is one) as rows of :data:`COLUMNS`.

    Args:
        model, data: shell patterns (``"resnet*"``), matched without regard to case.
        status: one of :data:`STATUSES` or several.
        backend: ``torch``, ``tensorflow`` or ``jax``.
        sort: one of :data:`SORT_KEYS`; runs without the value come last. ``reverse``: largest first.

    Raises:
        KzooError: ``root`` is not a folder, or an unknown ``sort`` key or status.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise KzooError(f"No such folder of runs: {root}")
    if sort not in SORT_KEYS:
        raise KzooError(f"Runs sort by one of {', '.join(SORT_KEYS)}. Received: sort={sort!r}.")
    wanted = {status} if isinstance(status, str) else set(status or ())
    if wanted - set(STATUSES):
        raise KzooError(f"A run's status is one of {', '.join(STATUSES)}. Received: "
                        f"{', '.join(sorted(wanted - set(STATUSES)))}.")
    if is_run_folder(root):
        folders = [root]
    else:
        folders = sorted(_subfolders(root))
    rows = [describe_run(folder) for folder in folders]
    rows = [r for r in rows if _matches(r["model"], model) and _matches(r["data"], data)
            and (not wanted or r["status"] in wanted) and (backend is None or r["backend"] == backend)]
    present = [r for r in rows if _sort_value(r, sort) is not None]
    present.sort(key=lambda r: _sort_value(r, sort), reverse=reverse)
    return present + [r for r in rows if _sort_value(r, sort) is None]


def _subfolders(root):
    """The folders in ``root`` (hidden ones aside), and the entries that cannot be looked at (listed as broken)."""
    for entry in os.scandir(root):
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir():
                yield entry.path
        except OSError:
            yield entry.path


def _matches(value, pattern):
    return pattern is None or (value is not None and fnmatch.fnmatch(str(value).lower(), pattern.lower()))


def _sort_value(row, key):
    if key == "status":
        return STATUSES.index(row["status"])
    if key == "epochs":
        return row["epochs_done"]
    if key == "wall":
        return row["wall_s"] if row["wall_s"] is not None else row["train_s"]
    if key == "date":
        return _timestamp(row["date"])
    return row[key]


def compare_runs(paths, *, png=None, root="runs"):
    """Two or more runs side by side: what their configurations differ in, their metrics, their curves.

    Args:
        paths: run folders; a name that is no folder here is looked up in ``root``.
        png: where to draw every run's curves from its ``metrics.csv``, overlaid (one panel per metric, a
            colour per run, validation dashed); ``None``: no picture.

    Returns:
        ``{"runs": [row, ...], "labels": [...], "config": {key: [value per run]}, "same": n, "metrics":
        {name: [value per run]}, "png": path or None}``. ``config`` holds only the keys whose values differ
        (nested keys dotted: ``options.pool``, ``versions.keras``; ``None`` where a run lacks the key); ``same``
        counts the others.

    Raises:
        KzooError: fewer than two runs, or a path that is not a folder.
    """
    paths = [p if os.path.isdir(p) or not os.path.isdir(os.path.join(root, p)) else os.path.join(root, p)
             for p in map(os.fspath, paths)]
    if len(paths) < 2:
        raise KzooError(f"Compare two runs or more. Received: {len(paths)}.")
    for path in paths:
        if not os.path.isdir(path):
            raise KzooError(f"No such run folder: {path}")
    rows = [describe_run(p) for p in paths]
    labels = _labels(paths)
    configs = [_flatten(_config_or_empty(p)) for p in paths]
    keys = list(dict.fromkeys(k for c in configs for k in c if k not in _COMPARE_IGNORED))
    differing = {k: [c.get(k, _MISSING) for c in configs] for k in keys}
    differing = {k: [None if v is _MISSING else v for v in values] for k, values in differing.items()
                 if any(v != values[0] or (v is _MISSING) != (values[0] is _MISSING) for v in values)}
    result = {"runs": rows, "labels": labels, "config": differing, "same": len(keys) - len(differing),
              "metrics": _metrics_side_by_side(paths, rows), "png": None}
    if png is not None:
        from kzoo.engine.checkpoints import atomic_write

        curves = [_metrics_rows(p) for p in paths]
        atomic_write(os.fspath(png), lambda tmp: _plot_overlaid(curves, labels, tmp))
        result["png"] = os.fspath(png) if os.path.exists(png) else None
    return result


def _labels(paths):
    """Each run's folder name; the path where two names are the same."""
    names = [os.path.basename(os.path.normpath(p)) for p in paths]
    return [n if names.count(n) == 1 else os.path.normpath(p) for n, p in zip(names, paths)]


def _config_or_empty(path):
    try:
        config = read_run_config(path)
    except Exception:  # reported as broken in the row
        return {}
    return config if isinstance(config, dict) else {}


def _flatten(mapping, prefix=""):
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _metrics_side_by_side(paths, rows):
    """Progress, the best monitored value, every scalar of ``metrics.json`` and the times, one list per name."""
    table = {name: [row[name] for row in rows] for name in ("status", "epochs_done", "epochs", "monitor", "best",
                                                             "best_epoch", "test_split")}
    reports = []
    for path in paths:
        try:
            reports.append(_read_json(os.path.join(path, "metrics.json")) or {})
        except _Broken:
            reports.append({})
    scalars = dict.fromkeys(k for r in reports for k, v in r.items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool)
                            and k not in ("best_epoch", "epochs_done"))
    for key in scalars:
        table[f"test.{key}"] = [r.get(key) for r in reports]
    table["wall_s"] = [row["wall_s"] for row in rows]
    table["train_s"] = [row["train_s"] for row in rows]
    return table


def _plot_overlaid(curves, labels, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    names = list(dict.fromkeys(k.removeprefix("val_") for rows in curves for row in rows[:1] for k in row
                               if k not in _NOT_CURVES))
    names = sorted(names, key=lambda k: (k != "loss", k))[:4] or ["loss"]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.8), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes[0], names):
        for i, (rows, label) in enumerate(zip(curves, labels)):
            epochs = [int(_number(r["epoch"])) + 1 for r in rows]
            for key, style, suffix in ((name, "-", ""), (f"val_{name}", "--", " (val)")):
                values = [_number(r.get(key)) for r in rows]
                if any(v is not None for v in values):
                    ax.plot(epochs, [float("nan") if v is None else v for v in values], style, marker="o",
                            markersize=3, color=colours[i % len(colours)], label=label + suffix)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(f"{name} (validation dashed)")
        ax.grid(alpha=0.3)
    handles, legend = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, legend, loc="lower center", ncol=min(4, len(handles)), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.06 + 0.04 * ((len(handles) - 1) // 4), 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
