"""validate_dataset: every malformed dataset fails with a DataError that says what was received."""

import numpy as np
import pytest

from kzoo.data import Dataset, validate_dataset
from kzoo.errors import DataError


def make(x_train=None, y_train=None, x_test=None, y_test=None, **kwargs):
    rng = np.random.default_rng(0)
    return Dataset(
        "toy",
        rng.integers(0, 256, (8, 6, 6), dtype=np.uint8) if x_train is None else x_train,
        np.arange(8) % 3 if y_train is None else y_train,
        rng.integers(0, 256, (4, 6, 6), dtype=np.uint8) if x_test is None else x_test,
        np.arange(4) % 3 if y_test is None else y_test,
        **kwargs,
    )


def test_valid_dataset_passes_and_reports_shape():
    ds = make(class_names=["a", "b", "c"])
    validate_dataset(ds)
    validate_dataset(ds, num_classes=10)
    assert ds.input_shape == (6, 6, 1) and ds.num_classes == 3


def test_rgb_and_float_images_pass():
    ds = make(np.zeros((8, 5, 5, 3), np.float32), None, np.ones((4, 5, 5, 3), np.float32))
    validate_dataset(ds)
    assert ds.input_shape == (5, 5, 3)


def test_num_classes_without_class_names_comes_from_labels():
    assert make(y_train=np.array([0, 1, 2, 3, 4, 5, 6, 7])).num_classes == 8


@pytest.mark.parametrize("kwargs, message", [
    ({"y_train": np.arange(7) % 3}, "8 images but 7 labels"),
    ({"x_train": np.full((8, 6, 6), np.nan, np.float32)}, "288 NaN or infinite"),
    ({"y_test": np.array([0, 1, 2, 5])}, r"\[0, 3\).*from 0 to 5"),
    ({"y_test": np.array([0, -1, 2, 1])}, "from -1 to 2"),
    ({"x_train": np.zeros((0, 6, 6), np.uint8), "y_train": np.zeros(0, np.int64)}, "train split is empty"),
    ({"x_train": np.zeros((8, 6, 6, 2), np.uint8), "x_test": np.zeros((4, 6, 6, 2), np.uint8)},
     "1 \\(grayscale\\) or 3 \\(RGB\\) channels.*2 channels"),
    ({"x_train": np.zeros((8, 36), np.uint8)}, r"Received: shape \(8, 36\)"),
    ({"x_test": np.zeros((4, 7, 7), np.uint8)}, r"differ in shape: \(6, 6\) \(train\) vs \(7, 7\)"),
    ({"y_train": np.zeros((8, 2), np.int64)}, r"1-D array.*\(8, 2\)"),
    ({"y_train": np.zeros(8, np.float32)}, "integer class indices.*float32"),
])
def test_malformed_datasets_raise_data_error(kwargs, message):
    with pytest.raises(DataError, match=message):
        validate_dataset(make(**kwargs, class_names=["a", "b", "c"]))


def test_missing_split_is_named():
    ds = make()
    ds.y_test = None
    with pytest.raises(DataError, match="no y_test"):
        validate_dataset(ds)


def test_model_num_classes_is_enforced():
    ds = make(class_names=["a", "b", "c"])
    with pytest.raises(DataError, match=r"\[0, 2\) because the model has 2 classes.*num_classes=3"):
        validate_dataset(ds, num_classes=2)


def test_text_dataset_needs_text():
    validate_dataset(Dataset("t", task="text", text="abc"))
    with pytest.raises(DataError, match="needs a non-empty string"):
        validate_dataset(Dataset("t", task="text", text="  \n"))


def test_unknown_task():
    with pytest.raises(DataError, match="task 'audio'"):
        validate_dataset(make(task="audio"))
