"""``kzoo export``: a run or checkpoint as ONNX, SavedModel, LiteRT, OpenVINO or torch.export, verified."""

import click

from kzoo_cli._common import print_json


def _parse_batch(ctx, param, value):
    if value is None or value == "dynamic":
        return None
    try:
        batch = int(value)
    except ValueError:
        batch = 0
    if batch < 1:
        raise click.BadParameter(f"expected 'dynamic' or a positive integer. Received: {value!r}")
    return batch


@click.command("export")
@click.argument("run_or_checkpoint", type=click.Path())
@click.option("--format", "fmt", required=True, metavar="FORMAT",
              help="onnx, saved_model (TF SavedModel), litert (.tflite), openvino (.xml + .bin) or torch (.pt2).")
@click.option("--output", type=click.Path(), help="Where to write (default: beside the checkpoint).")
@click.option("--opset", type=click.IntRange(min=7), default=None, help="ONNX opset (onnx only).")
@click.option("--batch", default="dynamic", show_default=True, callback=_parse_batch, metavar="dynamic|N",
              help="Batch axis of the exported file: dynamic, or a fixed size.")
@click.option("--quantize", type=click.Choice(["int8"]), default=None,
              help="onnx only: post-training int8 quantization calibrated on the run's training data (default "
                   "output best.int8.onnx); verified by top-1 agreement with the float model (>= 98%).")
@click.option("--overwrite", is_flag=True, help="Replace an existing export at the output path.")
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Test samples the verification runs.")
@click.option("--trust", is_flag=True, help="Allow loading unsafe content (Lambda layers). Only for files you trust.")
@click.option("--json", "as_json", is_flag=True, help="Print the verification result as JSON.")
def export_command(run_or_checkpoint, fmt, output, opset, batch, quantize, overwrite, limit, trust, as_json):
    """Export a trained RUN_OR_CHECKPOINT and verify the file in its own runtime.

    The file is loaded back in onnxruntime, TensorFlow, the LiteRT interpreter, OpenVINO or torch, run on the
    run's test data and compared with the Keras model (max |difference| <= 1e-4); a file outside that is not
    kept (exit status 1). Each format is exported from the backend that serves it (torch for onnx and torch,
    tensorflow for the others), whatever the run trained on.

    \b
    Examples:
      kzoo export runs/lenet5-mnist_embedded-1 --format onnx
      kzoo export runs/lenet5-mnist_embedded-1/best.keras --format litert --batch 1 --output lenet5.tflite
      kzoo export runs/resnet18-mnist-1 --format onnx --quantize int8
    """
    from kzoo.export import export, verification_line

    result = export(run_or_checkpoint, fmt, output=output, opset=opset, batch=batch, overwrite=overwrite,
                    trust=trust, limit=limit, quantize=quantize)
    if as_json:
        print_json(result)
    else:
        click.echo(verification_line(result))
