"""``kzoo train MODEL --data FILE``: a text classifier, a translator and a language model from the user's files.

The model tells what the file must hold (``text<TAB>label`` for a sequence classifier, ``source<TAB>target`` for
a translator, any text for ``--task lm``); the run records the file as ``data_dir`` of the dataset that reads
it, so ``kzoo evaluate RUN`` scores the same held-out split. The runs are tiny (one epoch of a few dozen
sentences): the wiring is under test, not accuracy.
"""

import json
import os

import pytest
import yaml

from kzoo.data.sentences import HELD_OUT
from kzoo_cli.main import cli

TINY = ["--epochs", "1", "-q", "--batch-size", "16"]
# the CI asks for the torch and tensorflow suites; jax's compiler spends 15-25 s of CPU on each run below
not_on_jax = pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax", reason="trained on torch and tensorflow")


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _reviews(path):
    good, bad = ["good", "great", "lovely", "superb"], ["bad", "awful", "poor", "dull"]
    return _write(path, [f"a {(good if i % 2 else bad)[i % 4]} film, number {i}\t{'pos' if i % 2 else 'neg'}"
                         for i in range(40)])


@not_on_jax
def test_a_text_classifier_trains_on_a_tsv_and_scores_its_held_out_split(cli_runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the run folder is named after the file: runs/bilstm-reviews-1
    reviews = _reviews(tmp_path / "reviews.tsv")
    result = cli_runner.invoke(cli, ["train", "bilstm", "--data", "reviews.tsv", *TINY, "--seq-len", "6",
                                     "-o", "units=4", "-o", "embedding_dim=4"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "bilstm-reviews-1"
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert (config["data"], config["data_dir"]) == ("sentiment", str(reviews))
    assert config["task_kind"] == "text_classification" and config["class_names"] == ["neg", "pos"]
    held_out = round(40 * HELD_OUT["sentiment"])
    assert json.loads((run / "metrics.json").read_text())["samples"] == held_out

    monkeypatch.chdir(tmp_path.parent)  # the run does not depend on the directory it was trained in
    result = cli_runner.invoke(cli, ["evaluate", str(run), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["samples"] == held_out and sum(map(sum, report["confusion_matrix"])) == held_out
    other = _write(tmp_path / "other.tsv", [f"film {i}\t{'pos' if i % 2 else 'neg'}" for i in range(20)])
    result = cli_runner.invoke(cli, ["evaluate", str(run), "--data", str(other), "--json"])  # read as in training
    assert result.exit_code == 0 and json.loads(result.output)["samples"] == 4, result.output
    result = cli_runner.invoke(cli, ["predict", str(run), "a superb film."])
    assert result.exit_code == 0 and result.output.split(": ")[1].split()[0] in ("neg", "pos"), result.output


@not_on_jax
def test_a_translator_trains_on_a_tsv_and_scores_its_held_out_sources(cli_runner, tmp_path):
    words = ["go", "run", "stop", "wait", "help", "jump"]
    pairs = _write(tmp_path / "pairs.tsv", [f"{a} {b}.\t{b} {a} !" for a in words for b in words])
    run = tmp_path / "run"
    result = cli_runner.invoke(cli, ["train", "seq2seq", "--data", str(pairs), *TINY, "--seq-len", "4",
                                     "--output", str(run), "-o", "units=4", "-o", "embedding_dim=4"])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert (config["data"], config["data_dir"], config["task_kind"]) == ("fra_eng", str(pairs), "translation")
    held_out = round(len(words) ** 2 * HELD_OUT["fra_eng"])  # every source sentence is distinct
    assert json.loads((run / "metrics.json").read_text())["samples"] == held_out

    result = cli_runner.invoke(cli, ["evaluate", str(run), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["samples"] == held_out
    result = cli_runner.invoke(cli, ["generate", str(run), "--input", "go run.", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)[0]["input"] == "go run.", result.output


@pytest.mark.parametrize("model, columns", [("bilstm", "text<TAB>label"), ("seq2seq", "source<TAB>target")])
def test_a_file_that_does_not_fit_the_model_names_the_line_and_the_columns(cli_runner, tmp_path, model, columns):
    bad = _write(tmp_path / "bad.tsv", ["one\ttwo", "three\tfour", "five"])
    result = cli_runner.invoke(cli, ["train", model, "--data", str(bad), "--output", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert f"Error: {bad} line 3: expected 2 tab-separated columns {columns}, got 1." in result.output
    assert "Traceback" not in result.output


def test_a_missing_or_misplaced_path_is_named(cli_runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli_runner.invoke(cli, ["train", "bilstm", "--data", "sentences.tsv"])
    assert result.exit_code == 2 and "Error: No such file or folder: sentences.tsv." in result.output, result.output
    assert "Did you mean" not in result.output
    reviews = _reviews(tmp_path / "reviews.tsv")
    result = cli_runner.invoke(cli, ["train", "lenet5", "--data", "reviews.tsv"])
    assert result.exit_code == 2 and "reviews.tsv is a file; --data PATH takes a folder of images" in result.output
    result = cli_runner.invoke(cli, ["train", "bilstm", "--data", "reviews.tsv", "--data-dir", str(reviews)])
    assert result.exit_code == 2 and "Pass one of them" in result.output, result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow  # the language model's report generates a sample, one character per model call
def test_a_language_model_trains_on_a_txt_file(cli_runner, tmp_path):
    words = "the time traveller said that we were all wrong about the fourth dimension".split()
    book = _write(tmp_path / "book.txt", [" ".join(words[(i * 7 + j) % len(words)] for j in range(12))
                                          for i in range(20)])
    run = tmp_path / "run"
    result = cli_runner.invoke(cli, ["train", "gru", "--task", "lm", "--data", str(book), *TINY, "--seq-len", "8",
                                     "--output", str(run), "-o", "units=4"])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert (config["data"], config["data_dir"], config["task_kind"]) == ("timemachine", str(book), "lm")
    result = cli_runner.invoke(cli, ["evaluate", str(run), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["perplexity"] > 1, result.output


def test_the_path_tells_a_sequence_classifier_what_it_trains(tmp_path):
    from kzoo.registry import model_info
    from kzoo.tasks import task_name

    lstm = model_info("lstm")
    (tmp_path / "texts" / "pos").mkdir(parents=True)
    (tmp_path / "texts" / "pos" / "1.txt").write_text("fine", encoding="utf-8")
    (tmp_path / "images" / "cat").mkdir(parents=True)
    (tmp_path / "images" / "cat" / "1.png").write_bytes(b"")
    (tmp_path / "images" / "cat" / "notes.txt").write_text("a stray note", encoding="utf-8")
    assert task_name(lstm, data="reviews.tsv") == "text_classification"  # missing: named when it loads
    assert task_name(lstm, data=str(tmp_path / "texts")) == "text_classification"
    assert task_name(lstm, data=str(tmp_path / "images")) == "sequence_classification"  # images read row by row
    assert task_name(lstm, "lm", data="book.txt") == "lm"
    assert task_name(lstm, data="sentiment") == "text_classification"


def test_data_completes_dataset_names_then_paths():
    from kzoo_cli._common import complete_dataset

    assert [item.value for item in complete_dataset(None, None, "senti")] == ["sentiment"]
    assert [(item.value, item.type) for item in complete_dataset(None, None, "./rev")] == [("./rev", "file")]
