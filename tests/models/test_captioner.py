"""captioner: the image starts the decoder, padding is masked, any image backbone can be the encoder."""

import keras
import numpy as np

import kzoo
from kzoo.testing import trainable_count

CAPTION_IN = np.array([[2, 5, 6, 0, 0], [2, 7, 0, 0, 0]], dtype="int32")


def numpy_out(model, *arrays):
    return np.asarray(keras.ops.convert_to_numpy(model(list(arrays), training=False)))


def test_the_image_sets_the_decoder_state_and_padding_is_masked():
    keras.utils.set_random_seed(0)
    model = kzoo.create_model("captioner", num_classes=9, units=16, embedding_dim=4)
    images = np.random.default_rng(0).random((2, 28, 112, 1), dtype=np.float32)
    out = numpy_out(model, images, CAPTION_IN)
    swapped = numpy_out(model, images[::-1], CAPTION_IN)
    assert not np.allclose(out[0, 0], swapped[0, 0])  # the first word already depends on the image
    # a longer caption input with more padding gives the same outputs at the real steps
    longer = kzoo.create_model("captioner", num_classes=9, units=16, embedding_dim=4, caption_steps=8)
    longer.set_weights(model.get_weights())
    np.testing.assert_allclose(numpy_out(longer, images, np.pad(CAPTION_IN, ((0, 0), (0, 3))))[:, :5], out,
                               rtol=1e-5, atol=1e-6)


def test_a_registered_backbone_is_the_encoder():
    keras.utils.set_random_seed(0)
    model = kzoo.create_model("captioner", input_shape=(28, 112, 1), num_classes=9, units=16, encoder="lenet5")
    encoder = model.get_layer("encoder")
    assert encoder.output.shape[-1] == 16
    lenet = kzoo.create_model("lenet5", input_shape=(28, 112, 1), num_classes=16)
    lstm = 4 * (64 * 16 + 16 * 16 + 16)
    expected = trainable_count(lenet) + 2 * (16 * 16 + 16) + 9 * 64 + lstm + 16 * 9 + 9
    assert trainable_count(model) == expected


def test_the_small_cnn_has_one_stage_per_filter_count():
    model = kzoo.create_model("captioner", num_classes=9, filters=(4, 6), units=8, embedding_dim=4)
    convs = [layer for layer in model.get_layer("encoder").layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [4, 6]
    flat = (28 // 4) * (112 // 4) * 6  # two 2x2 poolings
    lstm = 4 * (4 * 8 + 8 * 8 + 8)
    expected = (9 * 4 + 4) + (9 * 4 * 6 + 6) + (flat * 8 + 8) + 2 * (8 * 8 + 8) + 9 * 4 + lstm + 8 * 9 + 9
    assert trainable_count(model) == expected
