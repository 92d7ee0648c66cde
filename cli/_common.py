"""Options and helpers shared by the commands."""

import json
import re
import sys

import click

from kzoo.backend import BACKENDS


def complete_model(ctx, param, incomplete):
    from kzoo.registry import models

    return [click.shell_completion.CompletionItem(n) for n in models.entries() if n.startswith(incomplete)]


def complete_dataset(ctx, param, incomplete):
    """Registered dataset names; where none matches, the shell's files and folders (``--data`` takes a path)."""
    from click.shell_completion import CompletionItem

    from kzoo.registry import datasets

    names = [CompletionItem(n) for n in datasets.entries() if n.startswith(incomplete)]
    return names or [CompletionItem(incomplete, type="file")]


model_argument = click.argument("model", shell_complete=complete_model)

backend_option = click.option(
    "--backend", type=click.Choice(sorted(BACKENDS)), default=None,
    help="Keras backend. Default: $KERAS_BACKEND, else torch.")

threads_option = click.option(
    "--threads", type=click.IntRange(min=1), default=None,
    help="Intra-op threads of the backend (default: the cores the machine's load average leaves idle, at least 1).")

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


def _parse_shape(ctx, param, value):
    if value is None:
        return None
    parts = [p.strip() for p in re.split(r"[,x]", value)]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise click.BadParameter(f"expected comma-separated positive integers such as 28,28,1. Received: {value!r}")
    if not shape or any(d <= 0 for d in shape):
        raise click.BadParameter(f"expected comma-separated positive integers such as 28,28,1. Received: {value!r}")
    return shape


def _parse_model_options(ctx, param, values):
    options = {}
    for item in values:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not key:
            raise click.BadParameter(f"expected key=value. Received: {item!r}")
        options[key] = value.strip() if sep else "true"  # a bare key switches a boolean option on
    return options


def model_build_options(func):
    """``--input-shape``, ``--num-classes`` and repeated ``--option key=value``."""
    func = click.option(
        "-o", "--option", "model_options", multiple=True, callback=_parse_model_options, metavar="KEY=VALUE",
        help="Model option (repeatable), e.g. -o small_stem=true. `kzoo info MODEL` lists them.")(func)
    func = click.option("--num-classes", type=click.IntRange(min=1), default=None,
                        help="Number of output classes (default: the model's).")(func)
    func = click.option("--input-shape", callback=_parse_shape, default=None, metavar="H,W,C",
                        help="Input shape, e.g. 28,28,1 (default: the model's).")(func)
    return func


def print_json(data):
    click.echo(json.dumps(data, indent=2, default=_jsonable))


def _jsonable(value):
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def console():
    from rich.console import Console

    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 120)


def fmt_int(n):
    return "-" if n is None else f"{n:,}"


def fmt_shape(shape):
    if shape is None:
        return "-"
    return "x".join("?" if d is None else str(d) for d in shape)
