"""``kzoo summary``: layer table, output shapes, parameters and FLOPs of a model."""

import click

from kzoo_cli._common import backend_option, console, fmt_int, fmt_shape, json_option, model_argument, \
    model_build_options, print_json


@click.command("summary")
@model_argument
@model_build_options
@backend_option
@json_option
def summary_command(model, input_shape, num_classes, model_options, backend, as_json):
    """Print MODEL's layers, output shapes, parameter counts and multiply-adds per sample.

    \b
    Examples:
      kzoo summary alexnet
      kzoo summary resnet18 --input-shape 28,28,1 --num-classes 10 -o small_stem=true
      kzoo summary lstm --backend tensorflow --json
    """
    from kzoo.backend import set_backend

    set_backend(backend)
    from kzoo.summary import summary

    result = summary(model, input_shape=input_shape, num_classes=num_classes, **model_options)
    if as_json:
        print_json(result)
        return
    from rich.table import Table

    table = Table(title=f"{result['model']} ({result['backend']} backend)", header_style="bold",
                  title_justify="left", box=None)
    for column, justify in (("layer", "left"), ("type", "left"), ("output shape", "left"),
                            ("params", "right"), ("MACs", "right")):
        table.add_column(column, justify=justify)
    for row in result["layers"]:
        shape = row["output_shape"]
        shape_text = fmt_shape(shape[1:]) if shape and not isinstance(shape[0], (list, tuple)) else str(shape)
        calls = f" x{row['calls']}" if row.get("calls", 1) > 1 else ""
        table.add_row(row["name"], row["type"] + calls, shape_text, fmt_int(row["params"]),
                      fmt_int(row["macs"]) if row["macs"] else "")
    out = console()
    out.print(table)
    out.print(f"Total params:         {fmt_int(result['total_params'])}", highlight=False)
    out.print(f"Trainable params:     {fmt_int(result['trainable_params'])}", highlight=False)
    out.print(f"Non-trainable params: {fmt_int(result['non_trainable_params'])}", highlight=False)
    out.print(f"MACs per sample:      {fmt_int(result['macs'])} ({result['macs'] / 1e9:.3f} G)", highlight=False)
