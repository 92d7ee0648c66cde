"""Property-based CLI tests (hypothesis): generated command lines never end in a traceback, and exit 0-3.

Cheap commands only (list, info, summary and build of small models, one-epoch trainings on a few samples,
evaluate and predict on bad files); examples are few and derandomized so the suite stays fast and repeatable.
"""

import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kzoo_cli.main import cli

FUZZ = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

SMALL_MODELS = ["mlp", "lenet5", "rnn", "lstm", "gru", "convnet2", "nope", ""]

odd_ints = st.one_of(st.integers(-3, 40), st.sampled_from([0, -1, 2**31, 2**63, 10**30]))
odd_numbers = st.one_of(odd_ints.map(str), st.floats(allow_nan=True, allow_infinity=True).map(str),
                        st.sampled_from(["", " ", "1e400", "-0", "0x10", "½", "1,2", "NaN", "abc"]))
odd_text = st.one_of(st.text(max_size=12), st.sampled_from(["", "-", "--", "*", "[", "../", "ünï", "\t"]))
small_shapes = st.lists(st.integers(1, 40), min_size=1, max_size=4).map(lambda dims: ",".join(map(str, dims)))
odd_shapes = st.one_of(small_shapes, odd_text, odd_numbers,
                       st.sampled_from(["28,28,1", "28x28x1", "0,1", "-1", "1,,1", "1e3,2", "100000,100000,3"]))
option_pairs = st.tuples(st.sampled_from(["hidden_sizes", "activation", "pool", "dropout", "units", "padding",
                                          "nope", "", "batch_norm", "small_stem"]),
                         st.one_of(odd_numbers, odd_text, st.sampled_from(["true", "false", "32,16", "max", "relu"])))


def assert_clean(result):
    """No traceback: a result ends normally or through SystemExit, with an exit code 0-3."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output}")
    assert 0 <= result.exit_code <= 3, result.output
    assert "Traceback" not in result.output


def invoke(runner, args):
    result = runner.invoke(cli, [str(a) for a in args])
    assert_clean(result)
    return result


@FUZZ
@given(command=st.sampled_from(["list", "info", "datasets", "plugins"]), words=st.lists(odd_text, max_size=2),
       flags=st.lists(st.sampled_from(["--json", "--task", "--family", "--strict", "-h", "--bogus"]), max_size=2))
def test_listing_commands(cli_runner, command, words, flags):
    invoke(cli_runner, [command, *words, *flags])


@settings(FUZZ, max_examples=8)
@given(model=st.sampled_from(SMALL_MODELS), shape=st.one_of(st.none(), odd_shapes),
       classes=st.one_of(st.none(), odd_numbers), options=st.lists(option_pairs, max_size=2),
       as_json=st.booleans())
def test_summary(cli_runner, model, shape, classes, options, as_json):
    args = ["summary", model]
    if shape is not None:
        args += ["--input-shape", shape]
    if classes is not None:
        args += ["--num-classes", classes]
    for key, value in options:
        args += ["-o", f"{key}={value}"]
    result = invoke(cli_runner, args + (["--json"] if as_json else []))
    if result.exit_code == 0:
        assert "params" in result.output


@settings(FUZZ, max_examples=6)
@given(model=st.sampled_from(["mlp", "lenet5", "lstm", "nope"]),
       output=st.sampled_from(["{tmp}/m.keras", "{tmp}", "{tmp}/missing/m.keras", "{tmp}/m.h5", "", "/proc/x.keras",
                               "{tmp}/ünï.keras", "{tmp}/.keras"]),
       shape=st.one_of(st.none(), small_shapes), overwrite=st.booleans())
def test_build(cli_runner, model, output, shape, overwrite):
    with tempfile.TemporaryDirectory() as tmp:
        args = ["build", model, "--output", output.format(tmp=tmp)] + (["--overwrite"] if overwrite else [])
        result = invoke(cli_runner, args + (["--input-shape", shape] if shape else []))
        if result.exit_code == 0:
            assert os.path.getsize(output.format(tmp=tmp)) > 0


TRAIN_FLAGS = st.fixed_dictionaries({}, optional={
    "--batch-size": odd_numbers, "--val-split": st.sampled_from(["0", "0.5", "0.99", "1", "-0.1", "nan", "x"]),
    "--seed": odd_numbers, "--lr": odd_numbers, "--optimizer": st.sampled_from(["sgd", "adam", "x"]),
    "--loss": st.sampled_from(["sparse_cce", "cce", "mse", "contrastive", "x"]),
    "--l2": odd_numbers, "--clipnorm": odd_numbers, "--early-stopping": odd_numbers,
    "--engine": st.sampled_from(["auto", "fit", "torch", "tf", "x"]), "--threads": odd_numbers,
    "--schedule": st.sampled_from(["constant", "cosine", "step", "x"]), "--warmup-epochs": odd_numbers,
    "--label-smoothing": odd_numbers, "--ema": st.sampled_from(["0", "0.5", "0.999", "1", "-0.1", "nan", "x"]),
    "--weight-decay": odd_numbers,
})


@pytest.mark.slow
@settings(FUZZ, max_examples=10)
@given(model=st.sampled_from(["mlp", "mlp", "lenet5"]), limit=st.integers(1, 40), flags=TRAIN_FLAGS)
def test_train_a_few_samples(cli_runner, model, limit, flags):
    with tempfile.TemporaryDirectory() as tmp:
        args = ["train", model, "--epochs", "1", "--limit", limit, "-q", "--output", os.path.join(tmp, "run")]
        for flag, value in flags.items():
            args += [flag, value]
        invoke(cli_runner, args)


@settings(FUZZ, max_examples=5)
@given(model=st.sampled_from(["mlp", "mlp", "lenet5"]), limit=st.integers(1, 24),
       flags=st.fixed_dictionaries({}, optional={"--batch-size": odd_numbers, "--seed": odd_numbers,
                                                "--val-split": st.sampled_from(["0", "0.5", "0.99", "x"])}))
def test_train_one_tiny_epoch(cli_runner, model, limit, flags):
    with tempfile.TemporaryDirectory() as tmp:
        args = ["train", model, "--epochs", "1", "--limit", limit, "-q", "--output", os.path.join(tmp, "run")]
        for flag, value in flags.items():
            args += [flag, value]
        invoke(cli_runner, args)


BAD_FILES = {
    "missing.keras": None,
    "empty.keras": b"",
    "text.keras": b"not a zip",
    "zip.keras": b"PK\x05\x06" + b"\0" * 18,  # an empty zip archive
    "image.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 20,
    "folder": "dir",
}


@FUZZ
@given(command=st.sampled_from(["evaluate", "predict"]), checkpoint=st.sampled_from(sorted(BAD_FILES)),
       image=st.sampled_from(sorted(BAD_FILES)), extra=st.lists(st.sampled_from(
           ["--json", "--top-k", "0", "--top-k", "-3", "--data", "mnist_embedded", "--data", "timemachine",
            "--data", "nope", "--trust", "--limit", "-1"]), max_size=3))
def test_evaluate_and_predict_bad_files(cli_runner, command, checkpoint, image, extra):
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in BAD_FILES.items():
            if content == "dir":
                os.mkdir(os.path.join(tmp, name))
            elif content is not None:
                with open(os.path.join(tmp, name), "wb") as handle:
                    handle.write(content)
        args = [command, os.path.join(tmp, checkpoint)]
        if command == "predict":
            args.append(os.path.join(tmp, image))
        result = invoke(cli_runner, args + extra)
        assert result.exit_code != 0  # none of these files is a model
