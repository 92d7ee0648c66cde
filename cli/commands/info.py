"""``kzoo info``: everything the registry knows about one model."""

import click

from kzoo_cli._common import console, fmt_int, fmt_shape, json_option, model_argument, print_json


@click.command("info")
@model_argument
@json_option
def info_command(model, as_json):
    """Show a model's family, task, defaults, paper, options and training recipe.

    \b
    Examples:
      kzoo info lenet5
      kzoo info resnet18 --json
    """
    from kzoo.registry import model_info

    info = model_info(model)
    if as_json:
        print_json(info)
        return
    from rich.table import Table

    out = console()
    out.print(f"[bold]{info.get('qualified_name', info['name'])}[/bold]  {info.get('description', '')}")
    fields = [
        ("family", info.get("family")), ("task", info.get("task")),
        ("input shape", fmt_shape(info.get("input_shape"))), ("classes", info.get("num_classes")),
        ("parameters", fmt_int(info.get("params"))), ("paper", info.get("paper")),
        ("small inputs", info.get("small_inputs")),
        ("from", f"{info['distribution']} {info['version']} ({info['entry_point']})"),
        ("status", info["status"] + (f": {info['error']}" if info.get("error") else "")),
    ]
    for key, value in fields:
        if value is not None:
            out.print(f"  [dim]{key:>13}[/dim]  {value}", highlight=False)
    options = info.get("options") or {}
    if options:
        table = Table(title="options (-o KEY=VALUE)", box=None, header_style="bold", title_justify="left")
        for column in ("option", "type", "default", "allowed", "help"):
            table.add_column(column)
        for key, schema in options.items():
            allowed = schema.get("choices")
            if allowed is None and "min" in schema and "max" in schema:
                allowed = f"{schema['min']} to {schema['max']}"
            elif allowed is None and ("min" in schema or "max" in schema):
                allowed = f">= {schema['min']}" if "min" in schema else f"<= {schema['max']}"
            table.add_row(key, schema.get("type", ""), repr(schema.get("default")),
                          ", ".join(map(str, allowed)) if isinstance(allowed, list) else (allowed or ""),
                          schema.get("help", ""))
        out.print(table)
    recipe = info.get("recipe") or {}
    if recipe:
        out.print("  [dim]       recipe[/dim]  " + ", ".join(f"{k}={v}" for k, v in recipe.items()), highlight=False)
