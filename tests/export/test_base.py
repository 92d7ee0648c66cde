"""The verification data of ``kzoo.export.base``: real images for image inputs, token ids for id inputs."""

import numpy as np

from kzoo.data import load_dataset
from kzoo.export.base import verification_inputs
from kzoo.tasks.base import images_to_float


def test_an_image_and_token_ids_model_gets_images_and_ids():
    # a captioner: the image and the caption prefix
    specs = [("image", (28, 28, 1), "float32"), ("tokens", (7,), "int32")]
    (images, ids), source = verification_inputs(specs, {}, limit=20, vocab_size=11)
    assert source == "mnist_embedded test images (no run names the data), with seeded random token ids"
    np.testing.assert_array_equal(images, images_to_float(load_dataset("mnist_embedded").x_test[:20]))
    assert ids.shape == (20, 7) and ids.dtype == np.int32
    assert ids.min() >= 0 and ids.max() < 11 and len(np.unique(ids)) > 5


def test_a_pair_model_compares_each_image_with_the_next():
    specs = [("left", (28, 28, 1), "float32"), ("right", (28, 28, 1), "float32")]
    (left, right), source = verification_inputs(specs, {}, limit=10)
    assert source.endswith("each paired with the next")
    np.testing.assert_array_equal(right, np.roll(left, 1, axis=0))
