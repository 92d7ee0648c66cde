"""Small checkpoints of representative models for the export tests (the harness's small input shapes)."""

import os

import numpy as np

from kzoo.testing import random_inputs, small_input_shape

# name -> (registered model, build options): every kind of layer the zoo has that an exporter must map
REPRESENTATIVE = {
    "lenet5": ("lenet5", {}),
    "lstm": ("lstm", {}),
    "bigru": ("bigru", {}),
    "lenet5_stochastic": ("lenet5", {"pool": "stochastic"}),  # StochasticPooling2D's inference path
    "squeezenet1_1": ("squeezenet1_1", {}),  # the plugin's Fire layer
    "siamese": ("siamese", {}),  # two inputs, a distance out
    "lstm_lm": ("lstm", {"head": "lm"}),  # int32 token ids in, (steps, vocab) out
}


def build_small(name, options, folder, seed=0):
    """Build ``name`` at the harness's small input shape and save it as ``folder/<name>.keras``."""
    from kzoo.engine.loops import seed_everything
    from kzoo.registry import create_model, model_info

    seed_everything(seed)
    info = model_info(name)
    if options.get("head") == "lm":
        model = create_model(name, **options)
    else:
        classes = None if info.get("num_classes") is None else 10
        model = create_model(name, input_shape=small_input_shape(info), num_classes=classes, **options)
    path = os.path.join(folder, f"{name}{'_' + '_'.join(map(str, options.values())) if options else ''}.keras")
    model.save(path)
    return path, model


def keras_outputs(model, batch=5, seed=1):
    """Random inputs (not the data the verification ran) and the Keras model's outputs on this backend."""
    import keras

    x = random_inputs(model, batch, seed=seed)
    arrays = x if isinstance(x, list) else [x]
    return arrays, np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))


def variable_length_model(folder):
    """A model with an input of unknown length: no format kzoo exports can hold it with fixed shapes."""
    import keras

    inputs = keras.Input(shape=(None, 4), name="input")
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(keras.layers.GlobalAveragePooling1D()(
        keras.layers.Dense(8)(inputs)))
    path = os.path.join(folder, "variable_length.keras")
    keras.Model(inputs, outputs, name="variable_length").save(path)
    return path
