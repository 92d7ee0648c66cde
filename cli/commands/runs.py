"""``kzoo runs``: the run folders, one line each; ``kzoo runs compare``: runs side by side."""

import click

from kzoo_cli._common import console, json_option, print_json

RUNS_HELP = """List the run folders in DIR (default runs/), one line each, or compare runs.

A run's status is read from its files: running (its training process holds the folder's lock now), finished,
interrupted (Ctrl-C, or the process is gone without a word), failed (a diverged loss or another error), unknown
(an older kzoo trained it and it did not finish) or broken (not a run folder, or unreadable records; the reason
says which). wall is the training processes' wall time; a figure with * is the epochs' time only (the last
process died before it could record its end). The listing's options (--sort, --reverse, --model, --data, --status,
--backend, --json): kzoo runs list --help.

\b
Examples:
  kzoo runs
  kzoo runs ~/experiments --sort test --reverse
  kzoo runs --model 'resnet*' --status finished --json
  kzoo runs compare runs/lenet5-mnist-1 runs/lenet5-mnist-2 --png lenet5.png
"""


class RunsGroup(click.Group):
    """``kzoo runs [DIR] [OPTIONS]`` lists; ``kzoo runs compare ...`` compares (``list`` is the default)."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group("runs", cls=RunsGroup, help=RUNS_HELP)
def runs_command():
    pass


@runs_command.command("list")
@click.argument("folder", metavar="[DIR]", required=False, default="runs", type=click.Path(file_okay=False))
@click.option("--sort", "sort", default="date", show_default=True, metavar="KEY",
              help="name, status, model, data, backend, engine, devices, epochs, best, test, wall or date.")
@click.option("--reverse", is_flag=True, help="Largest (latest) first.")
@click.option("--model", default=None, metavar="PATTERN", help="Only runs of models matching a shell pattern.")
@click.option("--data", default=None, metavar="PATTERN", help="Only runs on datasets matching a shell pattern.")
@click.option("--status", "statuses", multiple=True, help="Only runs with this status (repeatable).",
              type=click.Choice(["running", "finished", "interrupted", "failed", "unknown", "broken"]))
@click.option("--backend", type=click.Choice(["torch", "tensorflow", "jax"]), default=None,
              help="Only runs trained on this backend.")
@json_option
def list_runs_command(folder, sort, reverse, model, data, statuses, backend, as_json):
    """List the run folders in DIR (default runs/), one line each.

    \b
    Examples:
      kzoo runs
      kzoo runs list ~/experiments --sort test --reverse
      kzoo runs --status interrupted --status failed
    """
    from kzoo.engine.run_index import list_runs

    rows = list_runs(folder, model=model, data=data, status=statuses, backend=backend, sort=sort, reverse=reverse)
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo(f"No run in {folder} matches.", err=True)
        return
    from rich.markup import escape
    from rich.table import Table

    best, test = _shared(rows, "monitor"), _shared(rows, "test_metric")
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    for column in ("run", "status", "model", "data", "backend", "epochs", f"best\n{best}".strip(),
                   f"test\n{test}".strip(), "wall", "date"):
        table.add_column(column, justify="right" if column in ("epochs", "wall") else "left",
                         no_wrap=column != "run", overflow="fold" if column == "run" else "ellipsis")
    for row in rows:
        table.add_row(escape(row["name"]), _coloured(row["status"]), escape(row["model"] or "-"),
                      escape(row["data"] or "-"), escape(_where(row)), _epochs(row),
                      _metric(row["monitor"], row["best"], best), _metric(row["test_metric"], row["test"], test),
                      _duration(row), (row["date"] or "-")[5:16].replace("T", " "))
    out = _wide_console()
    out.print(table)
    for row in rows:  # why a run is not finished, under the table where a long reason can wrap
        if row["reason"]:
            out.print(f"[dim]{escape(row['name'])}: {row['status']}: {escape(row['reason'])}[/dim]", soft_wrap=True)


@runs_command.command("compare")
@click.argument("runs", nargs=-1, required=True, metavar="RUN RUN...")
@click.option("--png", default="runs-compare.png", show_default=True, type=click.Path(dir_okay=False),
              help="Where to draw every run's curves, overlaid.")
@click.option("--no-png", is_flag=True, help="Draw no picture.")
@json_option
def compare_runs_command(runs, png, no_png, as_json):
    """Compare two runs or more: configuration differences, metrics side by side, curves overlaid in one PNG.

    A RUN is a run folder, or the name of one in runs/.

    \b
    Examples:
      kzoo runs compare runs/lenet5-mnist_embedded-1 runs/lenet5-mnist_embedded-2
      kzoo runs compare lenet5-mnist_embedded-1 lenet5-mnist_embedded-2 --png lenet5.png
      kzoo runs compare runs/a runs/b runs/c --no-png --json
    """
    from kzoo.engine.run_index import compare_runs

    result = compare_runs(runs, png=None if no_png else png)
    if as_json:
        print_json(result)
        return
    from rich.markup import escape
    from rich.table import Table

    out = console()
    for title, values in ((f"configuration: {len(result['config'])} difference(s), {result['same']} the same",
                           result["config"]), ("metrics", result["metrics"])):
        table = Table(title=title, title_justify="left", box=None, header_style="bold", pad_edge=False)
        table.add_column("")
        for label in result["labels"]:
            table.add_column(escape(label), overflow="fold")
        for key, row in values.items():
            table.add_row(escape(key), *(escape(_short(v)) for v in row))
        out.print(table)
        out.print()
    if result["png"]:
        click.echo(f"curves: {result['png']}")


def _wide_console():
    """The terminal's width; piped, wide enough that a line is a run (``kzoo runs | grep``)."""
    import sys

    from rich.console import Console

    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def _coloured(status):
    colour = {"running": "cyan", "finished": "green", "interrupted": "yellow", "failed": "red",
              "broken": "red", "unknown": "dim"}[status]
    return f"[{colour}]{status}[/{colour}]"


def _epochs(row):
    if row["epochs_done"] is None:
        return "-"
    return f"{row['epochs_done']}/{row['epochs'] if row['epochs'] is not None else '?'}"


# metric names in a cell, where runs of several tasks share a column
_SHORT = {"accuracy": "acc", "val_accuracy": "val_acc", "perplexity": "ppl", "val_perplexity": "val_ppl",
          "pair_accuracy": "pair_acc", "val_pair_accuracy": "val_pair_acc", "exact_match": "exact"}


def _shared(rows, key):
    """The metric name every run with a value has (shown once, in the header), else ``""`` (shown per run)."""
    names = {row[key] for row in rows if row[key] is not None}
    return names.pop() if len(names) == 1 else ""


def _metric(name, value, shared):
    if value is None:
        return "-"
    text = f"{value:.4f}" if isinstance(value, float) else str(value)
    return text if name == shared else f"{_SHORT.get(name, name)} {text}"


def _where(row):
    """``torch``, ``tensorflow (tf)``, ``torch x2``: the backend, its engine when named otherwise, the devices."""
    if row["backend"] is None:
        return "-"
    engine = f" ({row['engine']})" if row["engine"] and row["engine"] != row["backend"] else ""
    devices = f" x{row['devices']}" if (row["devices"] or 1) > 1 else ""
    return f"{row['backend']}{engine}{devices}"


def _duration(row):
    seconds = row["wall_s"] if row["wall_s"] is not None else row["train_s"]
    if seconds is None:
        return "-"
    text = (f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m" if seconds < 7200
            else f"{seconds / 3600:.1f}h")
    return text if row["wall_s"] is not None else f"{text}*"  # *: epochs only (no process record)


def _short(value, width=48):
    text = "-" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."
