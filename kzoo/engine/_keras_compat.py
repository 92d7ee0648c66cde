"""The Keras internals kzoo relies on, in one place, each with the reason no public API serves.

Everything else in kzoo uses Keras's public API (``keras.KerasTensor``, ``keras.ops``, ``keras.layers``, ...).
A new Keras version that moves or changes one of these breaks this module, and only this module; each entry
says which tests cover it.
"""

import importlib


def torch_adam_classes():
    """Keras's torch-backend Adam and AdamW (``keras.optimizers.Adam``/``AdamW`` instances are of these classes on
    torch; AdamW is Adam plus the base optimizer's decoupled weight decay).

    The torch engine's fused Adam replaces exactly these classes' update, not a subclass's (user subclasses);
    the public classes are their bases. Tests: tests/engine/test_fast_loop.py, test_torch_cuda_graph.py.
    """
    from keras.src.backend.torch.optimizers import torch_adam, torch_adamw

    return torch_adam.Adam, torch_adamw.AdamW


def torch_sgd_class():
    """Keras's torch-backend SGD, whose update :class:`kzoo.engine.torch_optim.FusedSGD` replaces (not a
    subclass's). Tests: tests/engine/test_torch_cuda_graph.py (fused SGD)."""
    from keras.src.backend.torch.optimizers import torch_sgd

    return torch_sgd.SGD


def swap_ema_weights(model):
    """Exchange ``model``'s trainable weights with its optimizer's moving averages (``use_ema``), on every backend.

    Keras does this inside ``keras.callbacks.SwapEMAWeights`` (``_swap_variables``: TensorFlow's distribution
    strategies, LossScaleOptimizer and MultiOptimizer included) and offers no public function. kzoo swaps the
    averages in around the ``best`` checkpoint (kzoo.engine.callbacks.ema_weights_in). Tests:
    tests/engine/test_training_options.py.
    """
    import keras

    swapper = keras.callbacks.SwapEMAWeights()
    swapper.set_model(model)
    swapper._swap_variables()


def torch_rnn_module():
    """Keras's torch RNN module, whose ``_cudnn_lstm`` / ``_cudnn_gru`` call torch's fused LSTM/GRU kernels.

    Keras uses them on CUDA only; kzoo's kernels (kzoo/engine/torch_kernels.py) use them on every device.
    ``importlib`` because the package re-exports a function named ``rnn`` that shadows the submodule as an
    attribute. Tests: tests/engine/test_torch_kernels.py.
    """
    return importlib.import_module("keras.src.backend.torch.rnn")


def model_supports_jit(model):
    """Keras's own test whether XLA can compile ``model`` (``jit_compile="auto"`` uses it); no public API.

    Tests: tests/engine/test_tf_loop.py.
    """
    from keras.src.trainers.trainer import model_supports_jit as supports

    return supports(model)


def set_global_seed(seed):
    """Seed Keras's global seed generator without importing TensorFlow.

    ``keras.utils.set_random_seed`` does the same and also imports TensorFlow whenever it is installed (to seed
    ``tf.data``), seconds and hundreds of MB on the torch and jax backends. Used by
    ``kzoo.engine.loops.seed_everything`` (tests/engine/test_fast_loop.py trains from its seeds).
    """
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    global_state.set_global_attribute("global_random_seed", seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)


def lazy_tensorflow_module():
    """Keras's lazy ``tensorflow`` module; its ``_available`` answers ``tf.available`` without importing it.

    kzoo.engine.checkpoints sets it to "unavailable" while saving on torch and jax, where ``serialize_keras_object``
    would otherwise import TensorFlow to recognise ``tf.TensorShape``. Every test that saves a checkpoint on
    torch goes through it.
    """
    from keras.src.utils import module_utils

    return module_utils.tensorflow


def losses_added_by(layer):
    """The losses ``layer`` itself added in its last outermost call (``add_loss``, its activity regularizer).

    The public ``Layer.losses`` also holds the sublayers' losses and the weight regularizers, which the torch
    engine counts once for the whole model. Tests: tests/engine/test_fast_loop.py (add_loss, activity).
    """
    return layer._losses


def py_dataset_adapter(dataset, shuffle=False):
    """Keras's adapter that runs a ``keras.utils.PyDataset``'s workers and prefetching (what ``fit`` uses).

    The torch engine and evaluation iterate streamed image batches outside ``fit``; the public
    ``PyDataset`` has no iterator of its own that starts its workers. Tests: tests/data/test_pipeline.py,
    tests/data/test_folder_runs.py.
    """
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    return PyDatasetAdapter(dataset, shuffle=shuffle)


def stateless_scope():
    """A scope where Keras builds variables without allocating them (``kzoo.memory`` sizes a model first).

    Keras has no public way to build a model's shapes without its weights. Tests: tests/test_memory.py.
    """
    from keras.src.backend.common.stateless_scope import StatelessScope

    return StatelessScope(initialize_variables=False)


def discard_uninitialized_variables():
    """Forget the variables a :func:`stateless_scope` left to initialise (a refused model is never allocated)."""
    from keras.src.backend.common import global_state

    global_state.set_global_attribute("uninitialized_variables", [])


def initialize_all_variables():
    """Allocate the variables a :func:`stateless_scope` deferred."""
    from keras.src.backend.common.variables import initialize_all_variables as initialize

    initialize()


def jax_data_input_module():
    """Keras's jax ``distribution_lib``, whose ``distribute_data_input`` places every batch on the mesh.

    Keras shards every batch along the data-parallel axis with the layout of the epoch's first batch, so the
    last, smaller batch of an epoch fails to place when it does not split over the devices (31 samples on 2);
    no public hook sees the batch. :mod:`kzoo.engine.distributed.jax_data_parallel` wraps the function while
    its scope is entered. Tests: tests/engine/distributed/test_jax_data_parallel.py (an odd sample count).
    """
    return importlib.import_module("keras.src.backend.jax.distribution_lib")


def producer_inputs(tensor):
    """The layer that produced a functional-graph ``tensor``, and the tensors that layer was called on.

    Keras has no public way to walk a functional graph backwards from a tensor (``layer.input`` needs a layer
    called once and says nothing of which layer made a tensor); ``kzoo explain`` walks back from the ``logits``
    head to the feature map that feeds it. Tests: tests/engine/test_gradcam.py, kzoo.testing.check_model.
    """
    layer, node_index, _ = tensor._keras_history
    return layer, list(layer._inbound_nodes[node_index].input_tensors)
