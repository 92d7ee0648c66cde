"""``kzoo predict``: top-k classes for image files, folders and globs."""

import click

from kzoo_cli._common import backend_option, console, print_json, threads_option


@click.command("predict")
@click.argument("checkpoint", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), help="Write a CSV: one row per image (path, top-k classes, probabilities).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True, help="Images per batch.")
@click.option("--invert/--no-invert", default=None,
              help="Invert grayscale images (dark ink on light paper). Default: decide from the border.")
@click.option("--beam", type=click.IntRange(min=1), default=1, show_default=True,
              help="Captioning runs: beam width (1: greedy decoding).")
@click.option("--trust", is_flag=True, help="Allow loading unsafe content (Lambda layers). Only for files you trust.")
@backend_option
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print predictions as JSON.")
def predict_command(checkpoint, images, top_k, output, batch_size, invert, beam, trust, backend, threads, as_json):
    """Classify IMAGES (files, folders, globs) with a trained CHECKPOINT (a run folder, .keras file, or an
    exported .onnx / .tflite / OpenVINO .xml / .pt2 file or SavedModel folder, run in its own runtime); caption
    them with a captioning run; with a text-classification run, IMAGES are texts to classify.

    \b
    Examples:
      kzoo predict runs/lenet5-mnist_embedded-1 digit.png
      kzoo predict runs/resnet18-fashion_mnist-1/best.keras shoe.jpg --top-k 5 --json
      kzoo predict runs/resnet18-photos-1 ~/photos/new "shots/*.jpg" --output preds.csv
      kzoo predict runs/lenet5-mnist_embedded-1/best.onnx digit.png
      kzoo predict runs/captioner-digit_captions-1 digits.png
      kzoo predict runs/lstm-sentiment-1 "a wonderful, moving film."
    """
    from kzoo.engine.inference import caption, classify_texts, run_task_kind
    from kzoo.export.runtime import exported_format, predict_exported

    kind = None if exported_format(checkpoint) else run_task_kind(checkpoint)
    if kind in ("captioning", "text_classification"):
        if kind == "captioning":
            results = caption(checkpoint, list(images), beam=beam, invert=invert, trust=trust, backend=backend,
                              threads=threads)
            lines = [f"{r['image']}: {r['caption']}" for r in results]
        else:
            results = classify_texts(checkpoint, list(images), trust=trust, backend=backend, threads=threads)
            lines = [f"{r['text']}: {r['name']} {r['probability']:.3f}" for r in results]
        if as_json:
            print_json(results)
        else:
            click.echo("\n".join(lines))
        return
    if exported_format(checkpoint):  # an exported file runs in its own runtime, without Keras
        results = predict_exported(checkpoint, list(images), top_k=top_k, invert=invert, output=output)
    else:
        from kzoo.engine.evaluation import predict

        results = predict(checkpoint, list(images), top_k=top_k, trust=trust, invert=invert, backend=backend,
                          batch_size=batch_size, output=output, threads=threads)
    if as_json:
        print_json(results)
        return
    out = console()
    if output:
        out.print(f"{len(results)} predictions -> {output}", highlight=False)
        return
    for result in results:
        guesses = ", ".join(f"{t['name']} {t['probability']:.3f}" for t in result["top"])
        out.print(f"{result['image']}: {guesses}", highlight=False)
