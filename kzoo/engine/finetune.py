"""Fine-tuning: train only the classifier head (``--freeze-backbone``), then everything (``--unfreeze-at``).

A frozen layer has ``trainable = False``: its weights get no gradient, and a frozen BatchNormalization runs in
inference mode (its moving statistics are used and kept), in ``fit`` and in kzoo's torch engine alike. The
flags are part of a saved ``.keras`` model, so a resumed run continues frozen or unfrozen as it was saved.
"""

HEAD_LAYERS = ("logits",)
UNFROZEN_LR_FACTOR = 0.1


def _leaf_layers(model):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def freeze_backbone(model):
    """Freeze every layer with weights except the head; returns the number of frozen layers."""
    frozen = 0
    for layer in _leaf_layers(model):
        if layer.weights and layer.name not in HEAD_LAYERS:
            layer.trainable = False
            frozen += 1
    if frozen and not any(layer.name in HEAD_LAYERS for layer in _leaf_layers(model)):
        from kzoo.errors import KzooError

        raise KzooError(f"--freeze-backbone needs a classifier head named {HEAD_LAYERS[0]!r}; {model.name} has none.")
    return frozen


def is_frozen(model):
    return any(layer.weights and not layer.trainable for layer in _leaf_layers(model))


def unfreeze(model):
    for layer in _leaf_layers(model):
        layer.trainable = True


def phases(config, initial_epoch):
    """``[(first epoch, end epoch, unfrozen)]`` still to train: frozen until ``unfreeze_at``, then unfrozen."""
    if not config.freeze_backbone:
        return [(initial_epoch, config.epochs, True)]
    boundary = config.unfreeze_at or config.epochs
    spans = [(initial_epoch, min(boundary, config.epochs), False), (max(initial_epoch, boundary), config.epochs, True)]
    return [span for span in spans if span[0] < span[1]]
