"""``kzoo datasets``: the registered datasets."""

import click

from kzoo_cli._common import console, fmt_shape, json_option, print_json


@click.command("datasets")
@click.argument("pattern", required=False)
@json_option
def datasets_command(pattern, as_json):
    """List registered datasets (built-in and from plugins).

    \b
    Examples:
      kzoo datasets
      kzoo datasets 'mnist*' --json
    """
    from kzoo.data import dataset_info, list_datasets

    infos = [dataset_info(name) for name in list_datasets(pattern)]
    if as_json:
        print_json(infos)
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("name", "task", "shape", "classes", "description"):
        table.add_column(column)
    for info in infos:
        table.add_row(info["name"], info.get("task", "?"), fmt_shape(info.get("input_shape")),
                      str(info.get("num_classes") or "-"), info.get("description", ""))
    console().print(table)
