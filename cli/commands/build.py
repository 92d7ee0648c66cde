"""``kzoo build``: save an untrained model as a ``.keras`` file."""

import click

from kzoo_cli._common import backend_option, model_argument, model_build_options


@click.command("build")
@model_argument
@click.option("--output", "-O", required=True, type=click.Path(dir_okay=False), help="Where to write FILE.keras.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--weights", metavar="FILE|torchvision|imagenet",
              help="Start from weights: a torchvision .pth, a keras.applications .h5, a kzoo .keras/.weights.h5, "
                   "or the published torchvision / imagenet (keras.applications) files.")
@model_build_options
@backend_option
def build_command(model, output, overwrite, input_shape, num_classes, model_options, backend, weights):
    """Build MODEL untrained and save it to a .keras file (loads on every backend).

    \b
    Examples:
      kzoo build lenet5 --output lenet5.keras
      kzoo build resnet18 --input-shape 32,32,3 --num-classes 10 -o small_stem=true --output r18.keras
      kzoo build resnet18 --weights resnet18-f37072fd.pth --output r18-imagenet.keras
    """
    from kzoo.backend import set_backend

    set_backend(backend)
    from kzoo.summary import build

    path = build(model, output, input_shape=input_shape, num_classes=num_classes, overwrite=overwrite,
                 weights=weights, **model_options)
    click.echo(f"Saved {model} with weights from {weights} to {path}" if weights
               else f"Saved untrained {model} to {path}")
