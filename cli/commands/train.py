"""``kzoo train``: train a model into a run folder, with progress, checkpoints, resume and plots."""

import sys

import click

from kzoo_cli._common import backend_option, complete_dataset, complete_model, print_json, threads_option


def _model_options(ctx, param, values):
    from kzoo_cli._common import _parse_model_options

    return _parse_model_options(ctx, param, values)


@click.command("train")
@click.argument("model", required=False, shell_complete=complete_model)
@click.option("--data", metavar="NAME|PATH", shell_complete=complete_dataset,
              help="Dataset name (default: the model's recipe, else the embedded MNIST digits), or a path, read as "
                   "the model trains: a folder of images (PATH/<class>/*.jpg or PATH/train/<class>/, + optional val/, "
                   "test/) for a classifier; a text<TAB>label file (.tsv/.txt) or PATH/<class>/*.txt for a text "
                   "classifier (rnn, lstm, gru, bi*); a source<TAB>target file for seq2seq*; a .txt file for --task "
                   "lm.")
@click.option("--data-dir", type=click.Path(),
              help="Read the named dataset's files from DIR or FILE (IDX .gz, .npz, .txt, .tsv).")
@click.option("--test-split", type=click.FloatRange(0, 1, max_open=True),
              help="Image folder: fraction of each class held out for the test (default 0.1; ignored with test/).")
@click.option("--image-size", metavar="N|HxW",
              help="Image folder: resize every image to N x N or H x W (default: the most common size in the folder).")
@click.option("--channels", type=click.Choice(["1", "3"]), callback=lambda c, p, v: int(v) if v else None,
              help="Image folder: 1 (grayscale) or 3 (RGB) channels (default: 1 when every image is grayscale).")
@click.option("--cache", type=click.Choice(["auto", "none", "ram", "disk"]),
              help="Image folder: keep decoded images for later epochs in RAM, or on disk across runs; auto (the "
                   "default): in RAM when they fit in 512 MB ($KZOO_RAM_CACHE_MB), else streamed every epoch.")
@click.option("--strict-data", is_flag=True, default=None,
              help="Image folder: an unreadable image is an error (default: skipped with a warning).")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs to train (default: the model's recipe).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Batch size.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Learning rate.")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam", "adamw"]), help="Optimizer.")
@click.option("--weight-decay", type=click.FloatRange(min=0),
              help="Decoupled weight decay: every step p -= lr x WD x p before the update (adamw: default 0.004).")
@click.option("--schedule", type=click.Choice(["constant", "cosine", "step"]),
              help="Learning-rate schedule: constant; cosine (from --lr to 0 over the run, after any warmup); step "
                   "(x0.1 at 50% and 75% of the steps).")
@click.option("--warmup-epochs", type=click.FloatRange(min=0), metavar="N",
              help="Raise the learning rate linearly from 0 to --lr over the first N epochs (counted in steps; "
                   "fractions allowed), then follow --schedule (constant or cosine).")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), metavar="EPS",
              help="Cross-entropy against targets (1 - EPS) x one-hot + EPS / classes (e.g. 0.1).")
@click.option("--ema", type=click.FloatRange(0, 1, max_open=True), metavar="MOMENTUM",
              help="Keep an exponential moving average of the weights (e.g. 0.999); validation, best.keras and "
                   "the final test use it (last.keras keeps the trained weights, to resume).")
@click.option("--val-split", type=click.FloatRange(0, 1, max_open=True), help="Fraction of training data held out.")
@click.option("--early-stopping", type=click.IntRange(min=0), metavar="N", help="Stop after N epochs without improvement.")
@click.option("--seed", type=int, help="Random seed (default 0).")
@click.option("--loss", type=click.Choice(["sparse_cce", "cce", "mse", "mae", "bce", "contrastive"]),
              help="Loss by name (default: sparse categorical cross-entropy).")
@click.option("--l1", type=click.FloatRange(min=0), help="L1 regularisation factor on every kernel.")
@click.option("--l2", type=click.FloatRange(min=0), help="L2 regularisation factor on every kernel.")
@click.option("--clipnorm", type=click.FloatRange(min=0), help="Clip each gradient to this norm.")
@click.option("--limit", type=click.IntRange(min=0), help="Use only the first N training and test samples.")
@click.option("--task", type=click.Choice(["lm"]), default=None,
              help="Train a sequence model (rnn, gru, lstm) as a character language model (default data: timemachine).")
@click.option("--seq-len", type=click.IntRange(min=1), help="Language model: characters per training window (default 64).")
@click.option("--vocab", type=click.Choice(["letters", "chars", "words"]),
              help="Language model: letters (lowercase a-z and space, the default) or every character of the text; "
                   "text classification: words (the default) or chars.")
@click.option("--margin", type=click.FloatRange(min=0, min_open=True),
              help="Contrastive loss: distance beyond which dissimilar pairs cost nothing (default 1.0).")
@click.option("--engine", type=click.Choice(["auto", "fit", "torch", "tf", "xla"]),
              help="Training loop (auto: fastest available; fit: plain keras fit; torch: kzoo's torch loop; "
                   "tf: fit with several steps per tf.function call; xla: tf plus XLA, the tensorflow default on GPU).")
@click.option("--weights", metavar="FILE|torchvision|imagenet",
              help="Start from weights (a .pth, .h5, .keras, or the published torchvision / imagenet files); "
                   "another --num-classes re-initialises the head.")
@click.option("--freeze-backbone", is_flag=True, default=None, help="Train only the classifier head.")
@click.option("--unfreeze-at", type=click.IntRange(min=1), metavar="EPOCH",
              help="With --freeze-backbone: train the head alone for EPOCH epochs, then every layer at --lr x 0.1.")
@backend_option
@click.option("--devices", metavar="N|all|0,1,...",
              help="Train data-parallel on N devices, every GPU (all) or these GPU ids; on a machine without GPU, N "
                   "simulates N devices (torch: N gloo processes). --batch-size is the global batch (default 1).")
@click.option("--sync-bn", is_flag=True, default=None,
              help="With --devices: batch-norm statistics over the global batch (where the framework offers it).")
@click.option("--scale-lr", is_flag=True, default=None,
              help="With --devices N: multiply --lr by N (the linear scaling rule; default: --lr as given).")
@click.option("--output", type=click.Path(file_okay=False), help="Run folder (default runs/<model>-<data>-<n>).")
@click.option("--resume", type=click.Path(file_okay=False), help="Continue a run folder from its last epoch.")
@click.option("--mixed-precision", is_flag=True, default=None,
              help="Mixed precision: bfloat16 on CPUs and GPUs that have it, else float16 with loss scaling; "
                   "weights stay float32.")
@threads_option
@click.option("--augment", is_flag=True, default=None, help="Random shifts (and flips where sensible).")
@click.option("--quiet", "-q", is_flag=True, default=None, help="No progress bar or epoch lines.")
@click.option("-o", "--option", "options", multiple=True, callback=_model_options, metavar="KEY=VALUE",
              help="Model option (repeatable); see `kzoo info MODEL`.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file with any of these options.")
@click.option("--json", "as_json", is_flag=True, help="Print the final metrics as JSON.")
def train_command(model, config_file, resume, as_json, options, **kwargs):
    """Train MODEL and write a run folder (checkpoints, metrics.csv, curves.png, metrics.json).

    With no other argument it trains offline on the embedded MNIST digits.

    \b
    Examples:
      kzoo train lenet5 --epochs 2
      kzoo train resnet18 --data fashion_mnist --data-dir ~/data/fashion-mnist -o small_stem=true
      kzoo train resnet18 --data ~/photos --image-size 64 --cache disk   # ~/photos/<class>/*.jpg
      kzoo train lstm --backend tensorflow -o num_layers=2
      kzoo train lstm --task lm                       # character LM on The Time Machine
      kzoo train gru --task lm --data book.txt --vocab chars --seq-len 100
      kzoo train bilstm --data reviews.tsv            # text<TAB>label lines: a text classifier
      kzoo train seq2seq --data pairs.tsv             # source<TAB>target lines: a translator
      kzoo train siamese --data mnist --data-dir ~/data/mnist
      kzoo train lenet5 -o activation=sigmoid -o pool=avg --loss mse
      kzoo train resnet18 --schedule cosine --warmup-epochs 2 --label-smoothing 0.1 --ema 0.999 --weight-decay 5e-4
      kzoo train --resume runs/lenet5-mnist_embedded-1 --epochs 4
      kzoo train resnet18 --weights resnet18-f37072fd.pth --num-classes 10 --freeze-backbone --unfreeze-at 3
      kzoo train resnet18 --devices 2 --batch-size 128          # data-parallel (torch: DDP, 2 processes)
      torchrun --nproc-per-node 4 -m kzoo train resnet18 --batch-size 256
    """
    import kzoo

    if model is None and resume is None and config_file is None:
        raise click.UsageError("Name a MODEL to train (e.g. kzoo train lenet5), or pass --resume DIR or --config FILE.")
    try:
        result = kzoo.train(model, config_file=config_file, resume=resume, options=options or None, **kwargs)
    except kzoo.KzooError as exc:
        if getattr(exc, "exit_code", 2) == 130:
            click.echo(str(exc), err=True)
            sys.exit(130)
        raise
    if as_json:
        print_json(result)
