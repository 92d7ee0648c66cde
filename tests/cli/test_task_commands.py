"""Translation, captioning and text classification through the CLI; ``kzoo evaluate`` on every task's run.

Each fixture trains one tiny run for one epoch (the wiring is under test here, not accuracy; accuracy runs are
in docs/accuracy.md), so the file is slow.
"""

import json

import numpy as np
import pytest

from kzoo_cli.main import cli

pytestmark = pytest.mark.slow
TINY = ["--epochs", "1", "-q", "--batch-size", "32"]


def _train(tmp_path_factory, name, *args):
    from click.testing import CliRunner

    run = tmp_path_factory.mktemp("runs") / name
    result = CliRunner().invoke(cli, ["train", *args, *TINY, "--output", str(run)])
    assert result.exit_code == 0, result.output
    return run


@pytest.fixture(scope="module")
def translation_run(tmp_path_factory):
    pairs = tmp_path_factory.mktemp("data") / "pairs.tsv"
    words = ["go", "run", "stop", "wait", "help", "jump", "hello", "fire"]
    lines = [f"{a} {b}.\t{b} {a} !" for a in words for b in words]
    pairs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return _train(tmp_path_factory, "translation", "seq2seq_attention", "--data", "fra_eng", "--data-dir", str(pairs),
                  "-o", "units=8", "-o", "embedding_dim=4", "-o", "num_layers=1")


def test_generate_translates_each_input(cli_runner, translation_run):
    result = cli_runner.invoke(cli, ["generate", str(translation_run), "--input", "I'm home.", "--input",
                                     "an unseen wordzz", "--beam", "2", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["input"] for r in rows] == ["I'm home.", "an unseen wordzz"]
    assert all(isinstance(r["translation"], str) for r in rows)


def test_evaluate_a_translation_run_reports_bleu(cli_runner, translation_run):
    result = cli_runner.invoke(cli, ["evaluate", str(translation_run), "--json", "--beam", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["task"] == "translation" and 0 <= report["bleu"] <= 100 and report["beam"] == 2
    assert (translation_run / "attention.png").exists()


def test_generate_without_input_on_a_translation_run_is_a_clear_error(cli_runner, translation_run):
    result = cli_runner.invoke(cli, ["generate", str(translation_run)])
    assert result.exit_code == 2 and "translation" in result.output and "Traceback" not in result.output


@pytest.fixture(scope="module")
def sentiment_run(tmp_path_factory):
    return _train(tmp_path_factory, "sentiment", "gru", "--data", "sentiment", "--limit", "300", "-o", "units=8")


def test_predict_classifies_sentences(cli_runner, sentiment_run):
    result = cli_runner.invoke(cli, ["predict", str(sentiment_run), "a wonderful, moving film.", "awful."])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and all(line.split(": ")[1].split()[0] in ("negative", "positive") for line in lines)


def test_evaluate_a_text_classification_run(cli_runner, sentiment_run):
    result = cli_runner.invoke(cli, ["evaluate", str(sentiment_run), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["samples"] == 300 and report["class_names"] == ["negative", "positive"]


@pytest.fixture(scope="module")
def caption_run(tmp_path_factory):
    return _train(tmp_path_factory, "captions", "captioner", "--limit", "256", "-o", "units=16")


def test_predict_captions_image_files(cli_runner, caption_run, tmp_path):
    from PIL import Image

    from kzoo.data import load_dataset

    strip = load_dataset("digit_captions").x_test[0]
    Image.fromarray(strip).save(tmp_path / "digits.png")
    result = cli_runner.invoke(cli, ["predict", str(caption_run), str(tmp_path / "digits.png"), "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert set(row["caption"].split()) <= {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                           "nine"}


def test_evaluate_a_caption_run(cli_runner, caption_run):
    result = cli_runner.invoke(cli, ["evaluate", str(caption_run), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["samples"] == 256 and 0 <= report["exact_match"] <= 1 and 0 <= report["token_accuracy"] <= 1


def test_evaluate_a_language_model_run_reports_perplexity(cli_runner, tmp_path_factory):
    run = _train(tmp_path_factory, "lm", "lstm", "--task", "lm", "--limit", "4000", "--seq-len", "16",
                 "-o", "units=8")
    result = cli_runner.invoke(cli, ["evaluate", str(run), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    stored = json.loads((run / "metrics.json").read_text())
    np.testing.assert_allclose(report["perplexity"], stored["perplexity"], rtol=1e-4)


def test_evaluate_a_siamese_run_reports_pair_accuracy(cli_runner, tmp_path_factory):
    run = _train(tmp_path_factory, "siamese", "siamese", "--limit", "300", "-o", "embedding_dim=8")
    result = cli_runner.invoke(cli, ["evaluate", str(run), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["task"] == "metric_learning" and 0.0 <= report["pair_accuracy"] <= 1.0
