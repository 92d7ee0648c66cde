"""Hostile command lines and files (issue 10): each gets `Error: ...` and exit 2, never a traceback."""

import pathlib
import time

import pytest
from zip_bomb import write_zip_bomb

from kzoo_cli.main import cli

ROOT = pathlib.Path(__file__).resolve().parents[2]


def refused(runner, *args, message):
    result = runner.invoke(cli, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    assert "Error: " in result.output and message in result.output and "Traceback" not in result.output
    return result


def test_summary_of_a_shape_whose_weights_cannot_fit(cli_runner):
    refused(cli_runner, "summary", "vgg16", "--input-shape", "20000,20000,3",
            message="819,235,597,096 parameters) needs about 3.3 TB of memory")


def test_build_with_a_huge_shape_writes_nothing(cli_runner, tmp_path):
    refused(cli_runner, "build", "mlp", "--input-shape", "99999,99999,3", "--output", tmp_path / "m.keras",
            message="of memory; this machine has")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("output,message", [
    ("/proc/nope.keras", "Cannot write /proc/nope.keras"),
    ("{tmp}/missing/m.keras", "the folder {tmp}/missing does not exist"),
    ("{tmp}", "is a directory"),
    ("{tmp}/m.h5", "must be a name ending in .keras"),
    ("{tmp}/.keras", "must be a name ending in .keras"),
])
def test_build_to_an_unwritable_output(cli_runner, tmp_path, output, message):
    refused(cli_runner, "build", "mlp", "--output", output.format(tmp=tmp_path), message=message.format(tmp=tmp_path))


def test_train_with_no_training_sample_left(cli_runner, tmp_path):
    refused(cli_runner, "train", "mlp", "--epochs", "1", "--limit", "1", "-q", "--output", tmp_path / "run",
            message="No training samples are left: --limit 1 keeps 1")
    assert not (tmp_path / "run").exists()


def test_train_with_a_batch_too_large_for_memory(cli_runner, tmp_path):
    refused(cli_runner, "train", "mlp", "--epochs", "1", "--limit", "50", "--batch-size", "100000000000", "-q",
            "--output", tmp_path / "run", message="Training mlp with --batch-size 100,000,000,000 needs about")


@pytest.mark.parametrize("args,message", [
    (["--seed", "-5"], "seed must be an integer in [0, 2**32)"),
    (["--seed", "99999999999999999999999"], "seed must be an integer in [0, 2**32)"),
    (["--lr", "inf"], "lr must be a finite number > 0"),
    (["--lr", "nan"], "lr must be a finite number > 0"),
    (["--l2", "inf"], "l2 must be a finite number >= 0"),
    (["--val-split", "0.9999"], "No training samples are left"),
])
def test_train_with_impossible_values(cli_runner, tmp_path, args, message):
    refused(cli_runner, "train", "mlp", "--epochs", "1", "--limit", "20", "-q", "--output", tmp_path / "run", *args,
            message=message)


def test_train_into_a_folder_that_takes_no_files(cli_runner):
    refused(cli_runner, "train", "mlp", "--epochs", "1", "--limit", "20", "-q", "--output", "/proc/run",
            message="/proc/run")


def test_zip_bomb_to_evaluate_and_predict(cli_runner, tmp_path):
    bomb = write_zip_bomb(tmp_path / "bomb.keras")
    image = tmp_path / "x.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    for args in (["evaluate", bomb, "--data", "mnist_embedded"], ["predict", bomb, image]):
        start = time.perf_counter()
        refused(cli_runner, *args, message="config.json inflates to 1,536.0 MiB")
        assert time.perf_counter() - start < 1.0


def test_evaluate_a_classifier_on_a_text_dataset(cli_runner, tmp_path):
    checkpoint = tmp_path / "lenet5.keras"
    assert cli_runner.invoke(cli, ["build", "lenet5", "--output", str(checkpoint)]).exit_code == 0
    refused(cli_runner, "evaluate", checkpoint, "--data", "timemachine", message="holds text data")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    refused(cli_runner, "predict", checkpoint, corrupt, message="is not a readable image")
    refused(cli_runner, "predict", checkpoint, tmp_path, message="is not a readable image")
