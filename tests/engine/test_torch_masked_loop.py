"""The torch engine's loop for masked, several-input, per-step models trains exactly as ``keras.Model.fit``."""

import keras
import numpy as np
import pytest

import kzoo
from kzoo.engine.loops import FitLoop, TorchLoop, seed_everything

if keras.backend.backend() != "torch":
    pytest.skip("the torch engine needs the torch backend", allow_module_level=True)

from kzoo.engine.torch_masked_loop import MaskedTorchLoop, why_not  # noqa: E402


def _sentences(rng, n, steps, vocab):
    """Right-padded token ids (0 = padding), 1 to ``steps`` real tokens each."""
    lengths = rng.integers(1, steps + 1, n)
    return np.where(np.arange(steps)[None] < lengths[:, None], rng.integers(1, vocab, (n, steps)), 0).astype("int32")


def _translation_data(rng, n):
    source, target = _sentences(rng, n, 6, 20), _sentences(rng, n, 5, 16)
    target_in = np.concatenate([np.ones((n, 1), "int32"), target], 1)  # <bos>, tokens
    target_out = np.concatenate([target, np.zeros((n, 1), "int32")], 1)
    target_out[np.arange(n), (target != 0).sum(1)] = 2  # tokens, <eos>
    return [source, target_in], target_out


def _train_like_fit(build, data, optimizer, epochs=3):
    """``fit`` and the masked torch loop from the same weights, one full batch an epoch: same logs, same weights."""
    rng = np.random.default_rng(0)
    (x, y), validation = data(rng, 24), data(rng, 12)
    seed_everything(0)
    models = [build(), build()]
    models[1].set_weights(models[0].get_weights())
    histories = []
    for model, loop in zip(models, (FitLoop(), MaskedTorchLoop())):
        model.compile(optimizer=optimizer(), loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=0),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        assert loop.supports(model, None)[0]
        histories.append(loop.run(model, x, y, validation_data=validation, epochs=epochs, initial_epoch=0,
                                  batch_size=len(y), callbacks=[]).history)
    fit, fast = histories
    assert fit["loss"][0] != fit["loss"][-1]  # it trained
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(fast[key], fit[key], rtol=1e-5, atol=1e-6, err_msg=key)
    for variable, reference in zip(models[1].weights, models[0].weights):
        np.testing.assert_allclose(variable.numpy(), reference.numpy(), rtol=1e-4, atol=1e-6, err_msg=variable.path)


@pytest.mark.parametrize("name,optimizer", [("seq2seq", lambda: keras.optimizers.Adam(0.02)),
                                            ("seq2seq_attention", lambda: keras.optimizers.Adam(0.02, clipnorm=1.0))])
def test_encoder_decoders_train_as_with_fit(name, optimizer):
    _train_like_fit(lambda: kzoo.create_model(name, input_shape=(6, 6), num_classes=16, source_vocab=20, units=8,
                                              embedding_dim=4, dropout=0.0), _translation_data, optimizer)


def _caption_data(rng, n):
    """Random 8x32 images and right-padded captions behind <bos> (1), tokens then <eos> (2)."""
    target = _sentences(rng, n, 4, 9)
    caption_in = np.concatenate([np.ones((n, 1), "int32"), target], 1)
    caption_out = np.concatenate([target, np.zeros((n, 1), "int32")], 1)
    caption_out[np.arange(n), (target != 0).sum(1)] = 2
    return [rng.random((n, 8, 32, 1), dtype=np.float32), caption_in], caption_out


def test_the_captioner_trains_as_with_fit_and_keeps_its_keras_layer_calls():
    # its conv and pooling layers call torch natively (channels-last views) during training only
    models = []

    def build():
        models.append(kzoo.create_model("captioner", input_shape=(8, 32, 1), num_classes=9, filters=(4, 6), dropout=0.0,
                                        units=8, embedding_dim=4, caption_steps=5))
        return models[-1]

    _train_like_fit(build, _caption_data, lambda: keras.optimizers.Adam(0.01, clipnorm=1.0))
    convs = [layer for layer in models[1]._flatten_layers() if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 2 and not any("call" in layer.__dict__ for layer in convs)


def test_a_masked_text_classifier_trains_as_with_fit():
    def build():
        tokens = keras.Input((7,), dtype="int32")
        x = keras.layers.Embedding(12, 4, mask_zero=True)(tokens)
        x = keras.layers.LSTM(5)(x)
        logits = keras.layers.Dense(3, kernel_regularizer=keras.regularizers.L2(0.01))(x)
        return keras.Model(tokens, keras.layers.Activation("softmax", dtype="float32")(logits))

    def data(rng, n):
        return _sentences(rng, n, 7, 12), rng.integers(0, 3, n)

    _train_like_fit(build, data, lambda: keras.optimizers.Adam(0.05))


def test_the_torch_engine_takes_the_text_models_and_says_why_not_otherwise():
    model = kzoo.create_model("seq2seq", input_shape=(6, 6), num_classes=16, source_vocab=20, units=8, embedding_dim=4)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=0),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    loop = TorchLoop()
    assert loop.supports(model, None) == (True, "")
    model.compile(optimizer="adam", loss="mse")
    assert "sparse categorical cross-entropy" in why_not(model)
    assert not TorchLoop().supports(model, None)[0]
