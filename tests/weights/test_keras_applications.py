"""keras.applications' weight files (the legacy .h5 layout of the published files) in kzoo, against
keras.applications' own models and ``preprocess_input``."""

import h5py
import numpy as np
import pytest
from weights_reference import logits_of, max_relative_difference

import kzoo


def _reference(name, size):
    import keras

    builders = {"vgg16": (keras.applications.VGG16, keras.applications.vgg16.preprocess_input),
                "densenet121": (keras.applications.DenseNet121, keras.applications.densenet.preprocess_input)}
    build, preprocess = builders[name]
    keras.utils.set_random_seed(0)
    model = build(weights=None, input_shape=(size, size, 3), classes=10, classifier_activation=None)
    for layer in model.layers:  # non-trivial moving statistics, so all four BN arrays are checked
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            rng = np.random.default_rng(len(layer.name))
            layer.set_weights([gamma + rng.random(gamma.shape, "float32") * 0.5,
                               beta + rng.random(beta.shape, "float32") * 0.2 - 0.1,
                               rng.random(mean.shape, "float32") - 0.5, rng.random(var.shape, "float32") + 0.5])
    return model, preprocess


def _save_legacy_h5(model, path):
    """The format keras.applications publishes (``layer_names`` / ``weight_names`` groups)."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)


# keras.applications' models have no width options (VGG16 keeps its 4096-unit classifier): 80 s each here
@pytest.mark.slow
@pytest.mark.parametrize("name,size", [("vgg16", 32), ("densenet121", 64)])
def test_logits_match_keras_applications(tmp_path, name, size):
    reference, preprocess = _reference(name, size)
    path = tmp_path / f"{name}.h5"
    _save_legacy_h5(reference, path)
    model = kzoo.create_model(name, input_shape=(size, size, 3), num_classes=10, weights=str(path))
    x = np.random.default_rng(0).random((2, size, size, 3), dtype="float32")
    expected = np.asarray(reference.predict(preprocess(x * 255.0), verbose=0))
    difference = max_relative_difference(logits_of(model, x), expected)
    print(f"fidelity: {name}  keras.applications (random init)  max relative logit difference {difference:.2e}")
    assert difference <= 1e-4
    assert model.get_layer("input_normalization").mode == ("caffe" if name.startswith("vgg") else "imagenet")
