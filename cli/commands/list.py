"""``kzoo list``: the registered models (metadata only: nothing heavy is imported)."""

import click

from kzoo_cli._common import console, fmt_int, fmt_shape, json_option, print_json


@click.command("list")
@click.argument("pattern", required=False)
@click.option("--task", default=None, help="Only models of this task (e.g. image_classification).")
@click.option("--family", default=None, help="Only models of this family (e.g. resnet).")
@click.option("--strict", is_flag=True, help="Exit 2 if any plugin is broken (also KZOO_STRICT_PLUGINS=1).")
@json_option
def list_command(pattern, task, family, strict, as_json):
    """List registered models, optionally matching a shell PATTERN.

    \b
    Examples:
      kzoo list
      kzoo list 'resnet*'
      kzoo list --family vgg --json
      kzoo list --strict
    """
    from kzoo.registry import list_models, model_info

    infos = [model_info(name) for name in list_models(pattern, task=task, family=family, strict=strict)]
    if as_json:
        print_json(infos)
        return
    if not infos:
        click.echo("No model matches." + (f" Pattern: {pattern!r}." if pattern else ""), err=True)
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("name", "family", "task", "input", "params", "description"):
        table.add_column(column, justify="right" if column == "params" else "left", no_wrap=column != "description")
    for info in infos:
        broken = info["status"] == "broken"
        name = info.get("qualified_name", info["name"])
        description = f"[red]broken: {info['error']}[/red]" if broken else info.get("description", "")
        if not info["builtin"]:
            description = f"[dim]({info['distribution']})[/dim] {description}"
        table.add_row(name, info.get("family", "?"), info.get("task", "?"), fmt_shape(info.get("input_shape")),
                      fmt_int(info.get("params")), description)
    console().print(table)
