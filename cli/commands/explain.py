"""``kzoo explain``: Grad-CAM heatmaps of a classification run over image files."""

import click

from kzoo_cli._common import backend_option, console, print_json


@click.command("explain")
@click.argument("run", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--output", type=click.Path(file_okay=False), help="Folder for the heatmap PNGs.  [default: RUN/explain]")
@click.option("--layer", help="The feature-map layer to explain.  "
                             "[default: the last feature map before the logits head]")
@click.option("--class", "target_class",
              help="A class index or name of the run to explain.  [default: the predicted class]")
@click.option("--invert/--no-invert", default=None,
              help="Invert grayscale images (dark ink on light paper). Default: decide from the border.")
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.45, show_default=True, help="Heatmap opacity.")
@click.option("--trust", is_flag=True, help="Allow loading unsafe content (Lambda layers). Only for files you trust.")
@backend_option
@click.option("--json", "as_json", is_flag=True,
              help="Print the explained class, probability and PNG per image as JSON.")
def explain_command(run, images, output, layer, target_class, invert, alpha, trust, backend, as_json):
    """Grad-CAM heatmaps: where a convolutional classifier RUN (a run folder or .keras file) looks in IMAGES
    (files, folders, globs). One PNG overlay per image, named IMAGE_gradcam.png.

    \b
    Examples:
      kzoo explain runs/lenet5-mnist_embedded-1 digit.png
      kzoo explain runs/resnet18-photos-1 "shots/*.jpg" --output heatmaps --json
      kzoo explain runs/resnet18-photos-1 cat.jpg --class dog --layer conv4_block2_out
    """
    from kzoo.engine.gradcam import explain

    results = explain(run, list(images), layer=layer, target_class=target_class, output=output, invert=invert,
                      alpha=alpha, trust=trust, backend=backend)
    if as_json:
        print_json(results)
        return
    out = console()
    for result in results:
        out.print(f"{result['image']}: {result['name']} {result['probability']:.3f} -> {result['heatmap']}",
                  highlight=False)
