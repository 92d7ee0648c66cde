"""The character language model: vocabulary, windows, perplexity, training and generation."""

import json

import numpy as np
import pytest

import kzoo
from kzoo.tasks.language_model import sample
from kzoo.tasks.samplers import windows
from kzoo.tasks.vocab import CharVocab
from kzoo.errors import DataError, OptionError

TINY = dict(task="lm", epochs=1, limit=6000, val_split=0.02, seq_len=16, batch_size=32, quiet=True,
            options={"units": 16})


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "lm"
    result = kzoo.train("gru", output=str(run), **TINY)
    return run, result


def test_letters_vocab_round_trip():
    vocab = CharVocab.build("letters", "")
    assert len(vocab) == 28 and vocab.tokens[:2] == ["<unk>", " "]
    ids = vocab.encode("The Time--Machine!")
    assert ids.dtype == np.int32
    assert vocab.decode(ids) == "the time machine "


def test_chars_vocab_keeps_characters_and_rejects_unknown_ones():
    vocab = CharVocab.build("chars", "Ab, c\n")
    assert vocab.decode(vocab.encode("c, A\n")) == "c, A\n"
    assert vocab.encode("Z")[0] == 0
    with pytest.raises(DataError, match="never saw"):
        vocab.encode("Zed", strict=True)


def test_windows_shift_targets_by_one():
    ids = np.arange(20)
    x, y = windows(ids, 4, offset=1)
    assert x.shape == y.shape == (4, 4)
    np.testing.assert_array_equal(x[0], [1, 2, 3, 4])
    np.testing.assert_array_equal(y[0], [2, 3, 4, 5])


def test_perplexity_metric_is_exp_of_cross_entropy():
    from kzoo.layers import Perplexity

    probs = np.full((2, 3, 4), 0.25, dtype="float32")
    metric = Perplexity()
    metric.update_state(np.zeros((2, 3), "int32"), probs)
    assert float(metric.result()) == pytest.approx(4.0, rel=1e-4)


def test_training_writes_perplexity_vocab_and_sample(lm_run):
    import yaml

    run, result = lm_run
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "perplexity" in header and "val_perplexity" in header
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["perplexity"] == result["perplexity"] > 1
    assert metrics["sample"]["text"].startswith("time traveller")
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["task_kind"] == "lm" and config["data"] == "timemachine" and len(config["vocab_tokens"]) == 28
    assert config["clipnorm"] == 1.0  # gradient clipping is on by default for language models


def test_generate_length_seed_and_temperature(lm_run):
    run, _ = lm_run
    text = kzoo.generate(str(run), "The Time", 30, 1.0, seed=3)
    assert text.startswith("the time") and len(text) == len("the time") + 30
    assert text == kzoo.generate(str(run), "The Time", 30, 1.0, seed=3)
    greedy = {kzoo.generate(str(run), "the time", 20, 0.0, seed=s) for s in (0, 1)}
    assert len(greedy) == 1  # temperature 0 ignores the seed
    hot = {kzoo.generate(str(run), "the time", 20, 5.0, seed=s) for s in (0, 1, 2)}
    assert len(hot) > 1


def test_sample_rejects_bad_arguments(lm_run):
    run, _ = lm_run
    model = kzoo.load_model(str(run))
    vocab = CharVocab.build("letters", "")
    with pytest.raises(OptionError, match="temperature"):
        sample(model, vocab, "a", length=1, temperature=-1)
    with pytest.raises(DataError, match="at least one character"):
        sample(model, vocab, "", length=1)


def test_lm_rejects_image_data_and_other_losses(tmp_path):
    with pytest.raises(DataError, match="trains on text"):
        kzoo.train("lstm", data="mnist_embedded", output=str(tmp_path / "a"), **TINY)
    with pytest.raises(OptionError, match="sparse categorical"):
        kzoo.train("lstm", loss="mse", output=str(tmp_path / "b"), **TINY)


def test_lm_needs_a_model_with_an_lm_head(tmp_path):
    with pytest.raises(OptionError, match="language-model head"):
        kzoo.train("lenet5", output=str(tmp_path / "a"), **{**TINY, "options": {}})


def _config(**kwargs):
    from kzoo.engine.config import DEFAULTS, TrainConfig

    return TrainConfig(**{**DEFAULTS, "seq_len": 4, **kwargs})


def test_test_text_is_the_last_part_and_used_for_nothing_else():
    from kzoo.data import Dataset
    from kzoo.tasks.language_model import LanguageModelTask

    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    prepared = LanguageModelTask().prepare(Dataset("abc", task="text", text=text), _config(val_split=0.1))
    vocab = CharVocab.build("letters", "")
    np.testing.assert_array_equal(prepared.x_train, vocab.encode(text[:800]))
    np.testing.assert_array_equal(prepared.x_val[0], vocab.encode(text[800:804]))
    np.testing.assert_array_equal(prepared.x_test[0], vocab.encode(text[900:904]))
    np.testing.assert_array_equal(prepared.y_test[-1], vocab.encode(text[993:997]))
    assert prepared.x_val.shape == prepared.x_test.shape == (24, 4) and prepared.test_split == "test"


def test_limit_cuts_the_training_text_only():
    from kzoo.data import Dataset
    from kzoo.tasks.language_model import LanguageModelTask

    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    whole = LanguageModelTask().prepare(Dataset("abc", task="text", text=text), _config())
    cut = LanguageModelTask().prepare(Dataset("abc", task="text", text=text), _config(limit=100))
    assert len(cut.x_train) == 100 and len(whole.x_train) == 800
    np.testing.assert_array_equal(cut.x_test, whole.x_test)
    np.testing.assert_array_equal(cut.x_val, whole.x_val)


@pytest.mark.slow
def test_resumed_run_trains_on_the_windows_of_its_epoch(tmp_path):
    """Two epochs in one go, and one epoch then --resume: the second epochs match (the sampler continued)."""
    import csv

    whole = tmp_path / "whole"
    kzoo.train("gru", output=str(whole), **{**TINY, "epochs": 2})
    part = tmp_path / "part"
    kzoo.train("gru", output=str(part), **TINY)
    kzoo.train(resume=str(part), epochs=2, quiet=True)
    rows = [list(csv.DictReader(open(run / "metrics.csv"))) for run in (whole, part)]
    assert [r["epoch"] for r in rows[1]] == ["0", "1"]
    for key in ("loss", "val_loss", "perplexity"):
        assert float(rows[1][1][key]) == pytest.approx(float(rows[0][1][key]), rel=1e-5), key
