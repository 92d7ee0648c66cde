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

# the formats beyond ONNX and SavedModel, and the models they are checked on: a plain CNN, a residual CNN with
# batch norm (``residual_cnn_model``), a recurrent model
OTHER_FORMATS = ["litert", "openvino", "torch"]
OTHER_FORMAT_MODELS = ["lenet5", "residual_cnn", "lstm"]


def build_small(name, options, folder, seed=0):
    """Build ``name`` at the harness's small input shape and save it as ``folder/<name>.keras``."""
    from kzoo.engine.loops import seed_everything
    from kzoo.factory import create_model
    from kzoo.registry import model_info

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


def residual_cnn_model(folder, seed=0):
    """A small residual CNN (batch norm with non-trivial moving statistics, a strided 1x1 shortcut, an Add, global
    pooling): the blocks of kzoo's ResNets at a size every format's converter handles in seconds. It starts with
    a plain Keras ``Resizing`` (called without ``training``, as in checkpoints saved before kzoo's input adapter
    passed ``training=False``), whose ``training=True`` default Keras 3.15 hands on to the batch norms of a call
    without ``training``: the exporters must trace the model in inference mode all the same."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(28, 28, 1), name="input")
    x = layers.Resizing(32, 32, name="resize")(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same", use_bias=False)(x)))
    y = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(x)))
    y = layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same", use_bias=False)(y))
    shortcut = layers.BatchNormalization()(layers.Conv2D(16, 1, strides=2, use_bias=False)(x))
    x = layers.ReLU()(layers.Add()([y, shortcut]))
    outputs = layers.Dense(10, activation="softmax", name="predictions")(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs, name="residual_cnn")
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0.0, 0.5, channels).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, channels).astype("float32"))
            layer.gamma.assign(rng.uniform(0.5, 1.5, channels).astype("float32"))
            layer.beta.assign(rng.normal(0.0, 0.3, channels).astype("float32"))
    path = os.path.join(folder, "residual_cnn.keras")
    model.save(path)
    return path, model
