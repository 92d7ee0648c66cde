"""The built-in datasets: the embedded default, data_dir layouts, the Keras cache and the offline error."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kzoo.data import Dataset, builtin, dataset_info, list_datasets, load_dataset
from kzoo.data.idx import write_idx
from kzoo.errors import DataError, UnknownNameError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"  # ../shared beside the repository
FASHION = SHARED / "fashion-mnist"
needs_fashion = pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
                                   reason="reference Fashion-MNIST not on this machine")
BUILTIN = {"mnist", "fashion_mnist", "cifar10", "mnist_embedded", "timemachine"}


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty Keras cache and a keras.datasets download that fails as it does without network."""
    home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(home))

    def no_network(name):
        raise OSError(f"URL fetch failure for {name}: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(builtin, "_keras_load_data", no_network)
    return home / "datasets"


# --- registry ---------------------------------------------------------------------------------------------------


def test_list_datasets_has_the_builtins():
    assert BUILTIN <= set(list_datasets())
    assert list_datasets(task="text") == ["timemachine"]
    assert "mnist_embedded" in list_datasets("*mnist*")


def test_dataset_info_reads_specs():
    info = dataset_info("fashion_mnist")
    assert info["class_names"][0] == "T-shirt/top" and info["class_names"][-1] == "Ankle boot"
    assert info["input_shape"] == (28, 28, 1) and info["num_classes"] == 10 and info["license"] == "MIT"
    assert dataset_info("timemachine")["task"] == "text"


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownNameError, match="Did you mean fashion_mnist"):
        load_dataset("fashon_mnist")


def test_importing_kzoo_data_does_not_import_keras():
    code = ("import sys, kzoo.data, kzoo.data.builtin; kzoo.data.list_datasets(); kzoo.data.dataset_info('mnist'); "
            "kzoo.data.load_dataset(); heavy = {'keras', 'torch', 'tensorflow', 'jax'} & set(sys.modules); "
            "assert not heavy, heavy")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- embedded default -------------------------------------------------------------------------------------------


def test_embedded_mnist_is_the_default():
    ds = load_dataset()
    assert ds.name == "mnist_embedded" and ds.task == "image_classification"
    assert ds.x_train.shape == (10000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.y_train.shape == (10000,) and ds.y_test.shape == (10000,)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.uint8
    assert ds.input_shape == (28, 28, 1) and ds.num_classes == 10 and ds.class_names[3] == "3"
    for labels in (ds.y_train, ds.y_test):
        counts = np.bincount(labels, minlength=10)
        assert len(counts) == 10 and counts.min() > 800 and counts.max() < 1200
    assert ds.x_train.max() == 255 and 25 < ds.x_train.mean() < 40


def test_embedded_mnist_matches_the_official_test_labels():
    if not (SHARED / "mnist/t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("reference MNIST not on this machine")
    from kzoo.data.idx import read_idx

    ds = load_dataset("mnist_embedded")
    np.testing.assert_array_equal(ds.y_test, read_idx(SHARED / "mnist/t10k-labels-idx1-ubyte.gz"))
    np.testing.assert_array_equal(ds.y_train, read_idx(SHARED / "mnist/train-labels-idx1-ubyte.gz")[:10000])


def test_limit_keeps_the_first_examples():
    ds = load_dataset(limit=100)
    assert len(ds.x_train) == len(ds.y_train) == len(ds.x_test) == len(ds.y_test) == 100
    with pytest.raises(DataError, match="limit=0"):
        load_dataset(limit=0)


def test_embedded_takes_no_data_dir(tmp_path):
    with pytest.raises(DataError, match="reads no data_dir"):
        load_dataset("mnist_embedded", data_dir=tmp_path)


# --- data_dir layouts -------------------------------------------------------------------------------------------


@needs_fashion
def test_fashion_mnist_from_data_dir():
    ds = load_dataset("fashion_mnist", data_dir=FASHION)
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.y_train.shape == (60000,) and set(np.unique(ds.y_test)) == set(range(10))
    assert ds.class_names[0] == "T-shirt/top" and ds.num_classes == 10


@needs_fashion
def test_fashion_mnist_from_the_keras_cache(offline):
    offline.mkdir(parents=True)
    (offline / "fashion-mnist").symlink_to(FASHION)
    assert load_dataset("fashion_mnist").x_train.shape == (60000, 28, 28)


def test_mnist_first10k_variant_takes_matching_labels(tmp_path):
    rng = np.random.default_rng(1)
    write_idx(tmp_path / "train-images-idx3-ubyte-first10k.gz", rng.integers(0, 256, (6, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(20, dtype=np.uint8) % 10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([7, 8, 9], np.uint8))
    ds = load_dataset("mnist", data_dir=tmp_path)
    assert ds.x_train.shape == (6, 28, 28)
    np.testing.assert_array_equal(ds.y_train, np.arange(6))


def test_partial_idx_folder_names_the_missing_files(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("fashion_mnist", data_dir=tmp_path)


def _save_npz(path, n_train=12, n_test=5, **overrides):
    rng = np.random.default_rng(2)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": np.arange(n_train) % 10,
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": np.arange(n_test) % 10}
    arrays.update(overrides)
    np.savez(path, **arrays)
    return arrays


def test_npz_file_and_folder(tmp_path):
    arrays = _save_npz(tmp_path / "mine.npz")
    for data_dir in (tmp_path / "mine.npz", tmp_path):
        ds = load_dataset("mnist", data_dir=data_dir)
        np.testing.assert_array_equal(ds.x_train, arrays["x_train"])
        np.testing.assert_array_equal(ds.y_test, arrays["y_test"])


def test_npz_missing_keys_and_bad_content(tmp_path):
    np.savez(tmp_path / "a.npz", images=np.zeros((2, 28, 28)))
    with pytest.raises(DataError, match="lacks x_train, y_train, x_test, y_test.*It holds: images"):
        load_dataset("mnist", data_dir=tmp_path / "a.npz")
    _save_npz(tmp_path / "b.npz", y_train=np.arange(11))
    with pytest.raises(DataError, match="12 images but 11 labels"):
        load_dataset("mnist", data_dir=tmp_path / "b.npz")
    (tmp_path / "c.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable .npz archive"):
        load_dataset("mnist", data_dir=tmp_path / "c.npz")


def test_bad_data_dir_says_what_it_holds(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("fashion_mnist", data_dir=tmp_path / "nowhere")
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="holds no fashion_mnist data; it contains: readme.txt"):
        load_dataset("fashion_mnist", data_dir=tmp_path)
    with pytest.raises(DataError, match="not a .npz archive"):
        load_dataset("fashion_mnist", data_dir=tmp_path / "readme.txt")


def _write_cifar_batches(folder, per_batch=4):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, per_batch).tolist()}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=3)
    return batch


def test_cifar10_from_python_batches(tmp_path):
    last = _write_cifar_batches(tmp_path / "cifar-10-batches-py")
    ds = load_dataset("cifar10", data_dir=tmp_path)
    assert ds.x_train.shape == (20, 32, 32, 3) and ds.x_test.shape == (4, 32, 32, 3)
    assert ds.input_shape == (32, 32, 3) and ds.class_names[0] == "airplane"
    # row layout of CIFAR: 1024 red, 1024 green, 1024 blue values, each row-major
    np.testing.assert_array_equal(ds.x_test[1, 0, 2], last[b"data"][1, [2, 1026, 2050]])


def test_cifar10_refuses_pickled_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar_batches(folder)
    with open(folder / "data_batch_3", "wb") as handle:
        pickle.dump({b"data": os.getcwd, b"labels": []}, handle)
    with pytest.raises(DataError, match="data_batch_3 is not a readable CIFAR-10 batch.*refusing"):
        load_dataset("cifar10", data_dir=folder)


# --- offline ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, where", [
    ("fashion_mnist", "fashion-mnist/"),
    ("mnist", "mnist.npz"),
    ("cifar10", "cifar-10-batches-py/"),
])
def test_offline_without_data_says_where_to_put_files(offline, name, where):
    with pytest.raises(DataError) as info:
        load_dataset(name)
    message = str(info.value)
    assert "could not download" in message and "Temporary failure in name resolution" in message
    assert f"{offline}/{where}" in message or f"{offline}{os.sep}{where}" in message
    assert "--data-dir DIR" in message


# --- text -------------------------------------------------------------------------------------------------------


def test_timemachine_is_stripped_of_the_gutenberg_licence():
    ds = load_dataset("timemachine")
    assert isinstance(ds, Dataset) and ds.task == "text" and ds.x_train is None
    assert ds.text.startswith("The Time Machine\n\nAn Invention")
    assert "Gutenberg" not in ds.text and "\r" not in ds.text and "\ufeff" not in ds.text
    assert 170_000 < len(ds.text) < 190_000
    assert ds.text.rstrip().endswith("still lived on in the heart of man.")
    assert ds.input_shape is None and ds.num_classes is None


def test_timemachine_reads_a_text_file(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("header\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\nHello world.\n"
                    "*** END OF THE PROJECT GUTENBERG EBOOK X ***\nlicence\n", encoding="utf-8")
    assert load_dataset("timemachine", data_dir=path).text == "Hello world."
    plain = tmp_path / "plain.txt"
    plain.write_text("  just text  \n", encoding="utf-8")
    assert load_dataset("timemachine", data_dir=plain).text == "just text"


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    (b"", "holds no text"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "binary file"),
    ("caf\u00e9".encode("latin-1"), "not UTF-8 text \\(byte 0xe9 at offset 3\\)"),
])
def test_timemachine_bad_files(tmp_path, content, message):
    path = tmp_path / "book.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_dataset("timemachine", data_dir=path)
