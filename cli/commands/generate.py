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
@click.option("--input", "inputs", multiple=True, metavar="SENTENCE",
              help="Translation runs: a sentence to translate (repeatable).")
@click.option("--beam", type=click.IntRange(min=1), default=1, show_default=True,
              help="Translation runs: beam width (1: greedy decoding).")
@click.option("--max-length", type=click.IntRange(min=1), default=None,
              help="Translation runs: most tokens to emit (default: the model's target length).")
@click.option("--trust", is_flag=True, help="Allow loading unsafe content (Lambda layers). Only for files you trust.")
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print the prefix, settings and text as JSON.")
def generate_command(run, prefix, length, temperature, seed, inputs, beam, max_length, trust, backend, as_json):
    """Continue PREFIX with text sampled from the language model of run folder RUN, or translate each --input
    with a translation run.

    \b
    Examples:
      kzoo train lstm --task lm
      kzoo generate runs/lstm-timemachine-1 --prefix "time traveller" --length 200
      kzoo generate runs/lstm-timemachine-1 --temperature 0.5 --seed 0 --json
      kzoo generate runs/seq2seq_attention-fra_eng-1 --input "i'm home ." --beam 4
    """
    import kzoo

    if inputs:
        from kzoo.engine.inference import translate

        translations = translate(run, list(inputs), beam=beam, max_len=max_length, trust=trust, backend=backend)
        if as_json:
            print_json([{"input": i, "translation": t} for i, t in zip(inputs, translations)])
        else:
            click.echo("\n".join(translations))
        return
    text = kzoo.generate(run, prefix, length, temperature, seed=seed, trust=trust, backend=backend)
    if as_json:
        print_json({"run": run, "prefix": prefix, "length": length, "temperature": temperature, "seed": seed,
                    "text": text})
        return
    click.echo(text)
