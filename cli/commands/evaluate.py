"""``kzoo evaluate``: score a run folder or checkpoint on a test set."""

import click

from kzoo_cli._common import backend_option, complete_dataset, console, print_json, threads_option


@click.command("evaluate")
@click.argument("run_or_checkpoint", type=click.Path())
@click.option("--data", metavar="NAME|PATH", shell_complete=complete_dataset,
              help="Dataset name, or a path as `kzoo train --data` takes it (default: what the run trained on).")
@click.option("--data-dir", type=click.Path(), help="Read the dataset's files from DIR.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--limit", type=click.IntRange(min=0), default=0, help="Only the first N test samples.")
@click.option("--beam", type=click.IntRange(min=1), default=1, show_default=True,
              help="Translation and captioning runs: beam width (1: greedy decoding).")
@click.option("--trust", is_flag=True, help="Allow loading unsafe content (Lambda layers). Only for files you trust.")
@backend_option
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def evaluate_command(run_or_checkpoint, data, data_dir, batch_size, limit, beam, trust, backend, threads, as_json):
    """Loss, accuracy, per-class precision/recall/F1 and confusion matrix of a trained model.

    A run of another task reports that task's scores (perplexity, pair accuracy, BLEU, exact match, ...).

    \b
    Examples:
      kzoo evaluate runs/lenet5-mnist_embedded-1
      kzoo evaluate runs/lenet5-mnist_embedded-1/best.keras --json
      kzoo evaluate runs/lenet5-mnist_embedded-1/best.onnx   (an exported file, in its own runtime)
      kzoo evaluate runs/seq2seq_attention-fra_eng-1 --beam 4
    """
    from kzoo.export.runtime import evaluate_exported, exported_format

    if exported_format(run_or_checkpoint):  # an exported file is scored in its own runtime
        report = evaluate_exported(run_or_checkpoint, data=data, data_dir=data_dir, batch_size=batch_size,
                                   limit=limit)
    else:
        from kzoo.engine.evaluation import evaluate

        report = evaluate(run_or_checkpoint, data=data, data_dir=data_dir, trust=trust, batch_size=batch_size,
                          limit=limit, backend=backend, beam=beam, threads=threads)
    if as_json:
        print_json(report)
        return
    from rich.table import Table

    out = console()
    if "per_class" not in report:  # another task than classification: its scalar scores
        scores = "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in report.items()
                           if isinstance(v, (int, float)) and not isinstance(v, bool))
        out.print(f"[bold]{report['model']}[/bold] on {report['data']} test ({report['task']}): {scores}",
                  highlight=False)
        return
    out.print(f"[bold]{report['model']}[/bold] on {report['data']} test ({report['samples']:,} samples): "
              f"accuracy {report['accuracy']:.4f}  loss {report['loss']:.4f}  macro F1 {report['macro_f1']:.4f}")
    if report.get("split"):  # an exported file on an image folder: which of its files were scored
        out.print(f"scored on {report['split']}", highlight=False)
    table = Table(box=None, header_style="bold")
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in report["per_class"]:
        table.add_row(row["class"], f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}",
                      str(row["support"]))
    out.print(table)
    names = report["class_names"]
    matrix = Table(title="confusion matrix (rows: true, columns: predicted)", box=None, title_justify="left")
    matrix.add_column("")
    for name in names:
        matrix.add_column(name[:8], justify="right")
    for name, row in zip(names, report["confusion_matrix"]):
        matrix.add_row(name[:12], *map(str, row))
    out.print(matrix)
