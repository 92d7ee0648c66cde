"""``kzoo bench``: training and inference throughput per backend x engine x precision, beside native PyTorch."""

import json

import click

from kzoo_cli._common import console, model_argument, model_build_options


def _split(ctx, param, value):
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


@click.command("bench")
@model_argument
@click.option("--backends", callback=_split, metavar="B1,B2",
              help="Backends to measure, e.g. torch,jax (default: every installed one).")
@click.option("--engines", callback=_split, metavar="E1,E2",
              help="Engines to measure where the backend has them: torch, tf, xla, fit (default: all).")
@click.option("--precision", type=click.Choice(["float32", "mixed", "both"]), default="both", show_default=True,
              help="mixed = kzoo train --mixed-precision (bfloat16 where the device has it, else float16).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=50, show_default=True,
              help="Timed training steps (and inference calls) per configuration.")
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True,
              help="Untimed training steps first.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when a GPU is visible.")
@click.option("--inference/--no-inference", default=True, show_default=True,
              help="Also time inference (kzoo's predict path and the native model in eval mode).")
@model_build_options
@click.option("--timeout", type=click.IntRange(min=1), default=900, show_default=True,
              help="Seconds allowed per configuration (each runs in its own process).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per row (JSON lines), as they come.")
def bench_command(model, backends, engines, precision, batch_size, steps, warmup, device, inference, input_shape,
                  num_classes, model_options, timeout, as_json):
    """Measure MODEL's training and inference speed on this machine, beside a native PyTorch loop.

    Every installed backend x engine x precision runs in a process of its own on random data; the
    hand-written PyTorch twin of the model (lenet5, convnet2, mlp, lstm, gru, resnet18) runs in the same
    command. Each row: samples/s, the ratio to the native loop at the same precision, peak memory (RSS on a
    CPU, the allocator's peak on CUDA), the engine that actually trained (an engine that cannot take the
    model falls back to fit and says why) and, on a known GPU, the fraction of its peak FLOP/s.

    \b
    Examples:
      kzoo bench lenet5
      kzoo bench resnet18 --backends torch,jax --precision mixed --batch-size 256 --device cuda
      kzoo bench lstm --engines torch,tf --no-inference --steps 20 --json
    """
    from kzoo.bench import bench

    precisions = ["float32", "mixed"] if precision == "both" else [precision]
    note = None if as_json else (lambda line: click.echo(f"running {line} ...", err=True))
    # --json: one row per line as each configuration finishes, so a run cut short keeps what it measured
    stream = (lambda row: click.echo(json.dumps(row))) if as_json else None
    rows = bench(model, backends=backends, engines=engines, precisions=precisions, device=device,
                 batch_size=batch_size, steps=steps, warmup=warmup, inference=inference, input_shape=input_shape,
                 num_classes=num_classes, options=model_options or None, timeout=timeout, progress=note,
                 on_row=stream)
    if not as_json:
        _print_table(rows)
    if any("error" in row for row in rows):
        raise SystemExit(1)


def _print_table(rows):
    from rich.table import Table

    first = rows[0]
    on_gpu = first["device"] == "cuda"
    where = next((r["device_name"] for r in rows if r.get("device_name")), first["device"])
    table = Table(title=f"{first['model']}, batch {first['batch_size']}, {first['device']} ({where})",
                  header_style="bold", title_justify="left", box=None)
    columns = ["mode", "runner", "backend", "engine", "precision", "samples/s", "x native", "peak MB"]
    columns += ["% peak FLOP/s"] if on_gpu else []
    for column in columns:
        table.add_column(column, justify="right" if column in ("samples/s", "x native", "peak MB", "% peak FLOP/s")
                         else "left")
    notes = []
    for row in rows:
        engine = row.get("engine_used") or row["engine"]
        if row.get("engine_used") and row["engine"] not in (engine, "eager") and row.get("mode") == "train":
            engine = f"{row['engine']} -> {engine}"
        if "error" in row:
            cells = ["[red]failed[/red]", "-", "-"] + (["-"] if on_gpu else [])
            notes.append(f"{row['runner']} {row['backend'] or ''} {row['engine']} {row['precision']} failed: "
                         f"{row['error']}")
        else:
            ratio = row.get("ratio_to_native")
            cells = [f"{row['samples_per_s']:,.1f}", "-" if ratio is None else f"{ratio:.2f}",
                     "-" if row.get("peak_memory_mb") is None else f"{row['peak_memory_mb']:,.0f}"]
            if on_gpu:
                fraction = row.get("flop_fraction")
                cells.append("unknown" if fraction is None else f"{100 * fraction:.1f}")
        table.add_row(row.get("mode", "train"), row["runner"], row["backend"] or "torch", engine, row["precision"],
                      *cells)
        notes += [n for n in row.get("notes", []) if n not in notes]
    out = console()
    out.print(table)
    for note in notes:
        out.print(f"note: {note}", highlight=False)
    busiest = max((r for r in rows if r.get("load_avg_1m") is not None), key=lambda r: r["load_avg_1m"], default=None)
    if busiest and busiest["load_avg_1m"] > busiest["cpu_count"]:
        out.print(f"note: the machine was busy (load average up to {busiest['load_avg_1m']:.1f} on "
                  f"{busiest['cpu_count']} CPUs); each configuration ran at its own time, so ratios across rows "
                  "moved with the load", highlight=False)
    kind = next((r["memory_kind"] for r in rows if r.get("memory_kind")), "rss")
    out.print(f"peak MB: {'process peak RSS' if kind == 'rss' else 'device allocator peak'}; x native: kzoo / "
              "native PyTorch samples/s, same mode and precision", highlight=False)
