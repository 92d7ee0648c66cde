"""``kzoo generate``: sample text from a character language model."""

import click

from kzoo_cli._common import backend_option, print_json


@click.command("generate")
@click.argument("run", type=click.Path())
@click.option("--prefix", default="time traveller", show_default=True, help="The start of the text.")
@click.option("--length", type=click.IntRange(min=0), default=200, show_default=True,
              help="Characters to generate after the prefix.")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Sampling temperature: lower is safer, higher more varied, 0 always takes the likeliest.")
@click.option("--seed", type=int, default=None, help="Sampling seed (default: a fresh one each time).")
@click.option("--trust", is_flag=True, help="Allow loading unsafe content (Lambda layers). Only for files you trust.")
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print the prefix, settings and text as JSON.")
def generate_command(run, prefix, length, temperature, seed, trust, backend, as_json):
    """Continue PREFIX with text sampled from the language model of run folder RUN.

    \b
    Examples:
      kzoo train lstm --task lm
      kzoo generate runs/lstm-timemachine-1 --prefix "time traveller" --length 200
      kzoo generate runs/lstm-timemachine-1 --temperature 0.5 --seed 0 --json
    """
    import kzoo

    text = kzoo.generate(run, prefix, length, temperature, seed=seed, trust=trust, backend=backend)
    if as_json:
        print_json({"run": run, "prefix": prefix, "length": length, "temperature": temperature, "seed": seed,
                    "text": text})
        return
    click.echo(text)
