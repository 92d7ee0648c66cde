"""``kzoo train --task lm`` and ``kzoo generate`` through the CLI; building-block flags and their errors."""

import json

import pytest

from kzoo_cli.main import cli

# --limit shortens only the training text; a small --val-split keeps the validation and test texts short too
LM = ["--task", "lm", "--epochs", "1", "--limit", "5000", "--val-split", "0.02", "--seq-len", "16", "--batch-size",
      "32", "-q", "-o", "units=16"]


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    from click.testing import CliRunner

    run = tmp_path_factory.mktemp("runs") / "lm"
    result = CliRunner().invoke(cli, ["train", "lstm", *LM, "--output", str(run), "--json"])
    assert result.exit_code == 0, result.output
    return run


def test_generate_prints_prefix_and_length(cli_runner, lm_run):
    result = cli_runner.invoke(cli, ["generate", str(lm_run), "--prefix", "time traveller", "--length", "25",
                                     "--seed", "0"])
    assert result.exit_code == 0, result.output
    text = result.output.rstrip("\n")
    assert text.startswith("time traveller") and len(text) == len("time traveller") + 25


def test_generate_json(cli_runner, lm_run):
    result = cli_runner.invoke(cli, ["generate", str(lm_run), "--length", "5", "--temperature", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["temperature"] == 0.5 and len(data["text"]) == len("time traveller") + 5


def test_generate_bad_run_folder_exits_2(cli_runner, tmp_path):
    result = cli_runner.invoke(cli, ["generate", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "No such run folder" in result.output
    (tmp_path / "image-run").mkdir()
    (tmp_path / "image-run" / "config.yaml").write_text("task_kind: classification\n")
    result = cli_runner.invoke(cli, ["generate", str(tmp_path / "image-run")])
    assert result.exit_code == 2 and "not a language-model run" in result.output


def test_generate_negative_temperature_exits_2(cli_runner, lm_run):
    result = cli_runner.invoke(cli, ["generate", str(lm_run), "--temperature", "-1"])
    assert result.exit_code == 2


def test_bidirectional_lm_is_rejected(cli_runner, tmp_path):
    result = cli_runner.invoke(cli, ["train", "bilstm", *LM, "--output", str(tmp_path / "bi")])
    assert result.exit_code == 2 and "bidirectional" in result.output


def test_train_siamese_through_the_cli(cli_runner, tmp_path):
    run = tmp_path / "siamese"
    result = cli_runner.invoke(cli, ["train", "siamese", "--epochs", "1", "--limit", "200", "--batch-size", "50",
                                     "--margin", "2", "-q", "--output", str(run), "--json"])
    assert result.exit_code == 0, result.output
    assert "pair_accuracy" in json.loads(result.output) and (run / "embedding.png").exists()


def test_train_lenet5_classic_with_mse(cli_runner, tmp_path):
    result = cli_runner.invoke(cli, ["train", "lenet5", "-o", "activation=sigmoid", "-o", "pool=avg", "--loss", "mse",
                                     "--epochs", "1", "--limit", "200", "-q", "--output", str(tmp_path / "l"),
                                     "--json"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args, message", [
    (["-o", "pool=median"], "pool"),
    (["-o", "activation=gelu"], "activation"),
])
def test_invalid_option_values_exit_2(cli_runner, tmp_path, args, message):
    result = cli_runner.invoke(cli, ["train", "lenet5", *args, "--epochs", "1", "--limit", "50", "-q",
                                     "--output", str(tmp_path / "x")])
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize("model, option", [("vgg11", "activation"), ("alexnet", "pool"), ("convnet2", "activation")])
def test_info_lists_new_options(cli_runner, model, option):
    result = cli_runner.invoke(cli, ["info", model, "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["options"][option]["choices"]
