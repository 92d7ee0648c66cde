"""The text datasets (fra_eng, sentiment) and the captioned digit strips, against their reference files."""

from pathlib import Path

import numpy as np
import pytest

from kzoo.data import dataset_info, load_dataset
from kzoo.data.captions import WORDS, compose
from kzoo.data.sentences import held_out, preprocess_nmt
from kzoo.errors import DataError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"


def test_preprocess_nmt_as_d2l():
    assert preprocess_nmt("Go.") == "go ."
    assert preprocess_nmt("I'm home.") == "i'm home ."
    assert preprocess_nmt("Va\u202f!") == "va !"  # French narrow no-break space before "!"
    assert preprocess_nmt("Hi, Tom!") == "hi , tom !"


def test_fra_eng_is_the_reference_file_preprocessed_with_a_disjoint_held_out_split():
    data = load_dataset("fra_eng")
    info = dataset_info("fra_eng")
    assert (len(data.x_train), len(data.x_test)) == (info["train_examples"], info["test_examples"])
    assert not set(data.x_test) & set(data.x_train)  # no held-out English sentence is trained on
    assert ("i'm home .", "je suis chez moi .") in set(zip(data.x_train, data.y_train))
    reference = SHARED / "fra-eng" / "fra.txt"
    if not reference.exists():
        pytest.skip("../shared/datasets/fra-eng is not here")
    pairs = [line.split("\t") for line in reference.read_text(encoding="utf-8").split("\n") if line.strip()]
    expected = {(preprocess_nmt(e), preprocess_nmt(f)) for e, f in pairs}
    shipped = set(zip(data.x_train, data.y_train)) | set(zip(data.x_test, data.y_test))
    assert shipped == expected


def test_a_users_pair_file_is_preprocessed_and_split_by_source(tmp_path):
    path = tmp_path / "pairs.tsv"
    lines = [f"Sentence {i}.\tPhrase {i} !" for i in range(40)] + ["Sentence 3.\tAutre phrase."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = load_dataset("fra_eng", data_dir=path)
    assert len(data.x_train) + len(data.x_test) == 41 and len(data.x_test) == 4
    assert not set(data.x_test) & set(data.x_train)
    assert "sentence 3 ." in set(data.x_train) | set(data.x_test)
    path.write_text("only one column\nanother\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1: expected 2 tab-separated columns source<TAB>target, got 1"):
        load_dataset("fra_eng", data_dir=path)
    path.write_text("one\ttwo\nthree\t \n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2: expected 2 tab-separated columns source<TAB>target, got an empty "
                                        "target"):
        load_dataset("fra_eng", data_dir=path)
    with pytest.raises(DataError, match="is a folder; expected a UTF-8 source<TAB>target file"):
        load_dataset("fra_eng", data_dir=tmp_path)


def test_a_users_file_may_start_with_a_bom_and_end_lines_with_crlf(tmp_path):
    path = tmp_path / "texts.tsv"
    path.write_bytes("\ufefffine\tpos\r\nawful\tneg\r\n\r\n".encode("utf-8"))
    data = load_dataset("sentiment", data_dir=path)
    texts = dict(zip(np.concatenate([data.x_train, data.x_test]), np.concatenate([data.y_train, data.y_test])))
    assert texts == {"fine": 1, "awful": 0} and data.class_names == ["neg", "pos"]


def test_a_users_files_are_read_within_bounds(tmp_path, monkeypatch):
    from kzoo.data import sentences, text

    monkeypatch.setattr(sentences, "MAX_LINE_BYTES", 32)
    monkeypatch.setattr(sentences, "MAX_LINES", 4)
    monkeypatch.setattr(text, "MAX_TEXT_BYTES", 200)
    path = tmp_path / "texts.tsv"
    path.write_text("short\tpos\n" + "long " * 10 + "\tneg\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2 is longer than 32 bytes"):
        load_dataset("sentiment", data_dir=path)
    path.write_text("".join(f"text {i}\tpos\n" for i in range(5)), encoding="utf-8")
    with pytest.raises(DataError, match="holds more than 4 text<TAB>label lines"):
        load_dataset("sentiment", data_dir=path)
    path.write_text("".join(f"t{i}\tpos\n" for i in range(40)), encoding="utf-8")
    with pytest.raises(DataError, match="more than kzoo reads into memory"):
        load_dataset("sentiment", data_dir=path)
    with pytest.raises(DataError, match="more than kzoo reads into memory"):
        load_dataset("timemachine", data_dir=path)
    path.write_bytes(b"text\x00\tpos\n")
    with pytest.raises(DataError, match="line 1 holds NUL bytes"):
        load_dataset("sentiment", data_dir=path)
    (tmp_path / "folder" / "neg").mkdir(parents=True)
    (tmp_path / "folder" / "neg" / "0.txt").write_text("x" * 33, encoding="utf-8")
    with pytest.raises(DataError, match="0.txt is longer than 32 bytes"):
        load_dataset("sentiment", data_dir=tmp_path / "folder")


def test_held_out_is_fixed_and_takes_whole_groups():
    groups = ["a", "b", "a", "c", "d", "e", "b", "f", "g", "h"]
    first, second = held_out(groups, 0.25), held_out(groups, 0.25)
    np.testing.assert_array_equal(first, second)
    chosen = {g for g, t in zip(groups, first) if t}
    assert len(chosen) == 2 and all(t == (g in chosen) for g, t in zip(groups, first))


def test_sentiment_matches_the_uci_files():
    data = load_dataset("sentiment")
    assert (len(data.x_train), len(data.x_test)) == (2400, 600)
    assert np.bincount(data.y_test).tolist() == [300, 300]
    assert data.class_names == ["negative", "positive"]
    reference = SHARED / "sentiment-labelled-sentences" / "imdb_labelled.txt"
    if not reference.exists():
        pytest.skip("../shared/datasets/sentiment-labelled-sentences is not here")
    labels = dict(zip(np.concatenate([data.x_train, data.x_test]), np.concatenate([data.y_train, data.y_test])))
    for line in reference.read_text(encoding="utf-8").split("\n")[:50]:
        if line.strip():
            text, label = line.rsplit("\t", 1)
            assert labels[text.strip()] == int(label)


def test_sentiment_reads_a_tsv_with_named_labels_and_a_folder_of_classes(tmp_path):
    path = tmp_path / "texts.tsv"
    path.write_text("".join(f"text {i}\t{'good' if i % 2 else 'bad'}\n" for i in range(20)), encoding="utf-8")
    data = load_dataset("sentiment", data_dir=path)
    assert data.class_names == ["bad", "good"] and len(data.x_train) + len(data.x_test) == 20
    for name in ("neg", "pos"):
        (tmp_path / "folder" / name).mkdir(parents=True)
        for i in range(5):
            (tmp_path / "folder" / name / f"{i}.txt").write_text(f"{name} review {i}\n", encoding="utf-8")
    data = load_dataset("sentiment", data_dir=tmp_path / "folder")
    assert data.class_names == ["neg", "pos"]
    texts = dict(zip(np.concatenate([data.x_train, data.x_test]), np.concatenate([data.y_train, data.y_test])))
    assert texts["pos review 3"] == 1 and texts["neg review 0"] == 0


def test_digit_captions_name_the_digits_and_keep_test_digits_out_of_training():
    digits = load_dataset("mnist_embedded")
    data = load_dataset("digit_captions")
    assert data.x_train.shape == (20000, 28, 112) and data.x_test.shape == (2000, 28, 112)
    train_digits = {d.tobytes(): int(y) for d, y in zip(digits.x_train, digits.y_train)}
    test_digits = {d.tobytes(): int(y) for d, y in zip(digits.x_test, digits.y_test)}
    for images, captions, source, other in ((data.x_train, data.y_train, train_digits, test_digits),
                                            (data.x_test, data.y_test, test_digits, train_digits)):
        for image, caption in zip(images[:50], captions[:50]):
            words = caption.split()
            assert 1 <= len(words) <= 4
            for slot, word in enumerate(words):
                digit = image[:, slot * 28:(slot + 1) * 28].tobytes()
                assert source[digit] == WORDS.index(word) and digit not in other
            assert not image[:, len(words) * 28:].any()  # the rest of the strip is blank


def test_compose_is_seeded():
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    a, ca = compose(images, np.array([0, 1, 2]), 5, seed=1)
    b, cb = compose(images, np.array([0, 1, 2]), 5, seed=1)
    np.testing.assert_array_equal(a, b)
    assert list(ca) == list(cb)
