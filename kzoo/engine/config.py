"""Training configuration: defaults < the model's recipe < a YAML file < explicit arguments."""

import dataclasses
import math
import os
from dataclasses import dataclass, field

from kzoo.errors import KzooError, OptionError, first_line

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step")
LOSSES = ("sparse_cce", "cce", "mse", "mae", "bce", "contrastive")
ENGINES = ("auto", "fit", "torch", "tf", "xla")
VOCABS = ("letters", "chars", "words")  # words: the token tasks (translation, captions, text classification)
CACHES = ("auto", "none", "ram", "disk")


@dataclass
class TrainConfig:
    """Everything ``kzoo train`` accepts; ``None`` means "take it from the recipe, else the default"."""

    model: str = None
    data: str = None
    data_dir: str = None
    epochs: int = None
    batch_size: int = None
    lr: float = None
    optimizer: str = None
    weight_decay: float = None
    schedule: str = None
    warmup_epochs: float = None  # linear warmup from 0 to lr over this many epochs (in steps), then the schedule
    label_smoothing: float = None  # cross-entropy targets mixed with the uniform distribution by this much
    ema: float = None  # momentum of an exponential moving average of the weights (0: none)
    val_split: float = None
    early_stopping: int = None
    seed: int = None
    backend: str = None
    output: str = None
    mixed_precision: bool = None
    augment: bool = None
    quiet: bool = None
    loss: str = None
    l1: float = None
    l2: float = None
    clipnorm: float = None
    limit: int = None
    engine: str = None
    task: str = None
    seq_len: int = None
    vocab: str = None
    margin: float = None
    test_split: float = None
    image_size: object = None
    channels: int = None
    cache: str = None
    strict_data: bool = None
    weights: str = None
    freeze_backbone: bool = None
    unfreeze_at: int = None
    devices: object = None  # N, "all" or "0,1,..." (kzoo.engine.distributed); None: 1, or torchrun's world
    sync_bn: bool = None
    scale_lr: bool = None
    threads: int = None  # intra-op threads; None: the cores the machine's load leaves idle (kzoo.backend)
    options: dict = field(default_factory=dict)


DEFAULTS = {
    "data": "mnist_embedded", "epochs": 5, "batch_size": 64, "lr": 1e-3, "optimizer": "adam",
    "weight_decay": 0.0, "schedule": "constant",
    "warmup_epochs": 0, "label_smoothing": 0.0, "ema": 0.0, "val_split": 0.1, "early_stopping": 0, "seed": 0,
    "mixed_precision": False, "augment": False, "quiet": False, "loss": "sparse_cce", "l1": 0.0, "l2": 0.0,
    "clipnorm": 0.0, "limit": 0, "engine": "auto", "seq_len": 64, "vocab": "letters", "margin": 1.0,
    "test_split": 0.1, "cache": "auto", "strict_data": False, "freeze_backbone": False, "unfreeze_at": 0,
    "sync_bn": False, "scale_lr": False,
}

FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def load_yaml(path):
    """Read a YAML file of train options (the same names as the CLI flags, with underscores)."""
    import yaml

    if not os.path.exists(path):
        raise KzooError(f"Config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except yaml.YAMLError as exc:
        raise KzooError(f"{path} is not valid YAML: {first_line(exc)}") from None
    if not isinstance(data, dict):
        raise KzooError(f"{path} must hold a mapping of option: value. Received: {type(data).__name__}.")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        import difflib

        hints = [f"{u} (did you mean {difflib.get_close_matches(u, FIELDS, 1)[0]}?)"
                 if difflib.get_close_matches(u, FIELDS, 1) else u for u in unknown]
        raise KzooError(f"{path}: unknown option(s) {', '.join(hints)}.")
    return data


def resolve(explicit, *, recipe=None, config_file=None):
    """Merge defaults, the model recipe, a YAML file and explicit values (which win) into a TrainConfig."""
    merged = dict(DEFAULTS)
    merged.update({k: v for k, v in (recipe or {}).items() if k in FIELDS and k != "options"})
    options = dict((recipe or {}).get("options", {}))
    layers = [load_yaml(config_file)] if config_file else []
    layers.append({k: v for k, v in explicit.items() if v is not None})
    for layer in layers:
        options.update(layer.get("options") or {})
        merged.update({k: v for k, v in layer.items() if k != "options" and v is not None})
    merged["options"] = options
    config = TrainConfig(**merged)
    check(config)
    return config


def _require(condition, message):
    if not condition:
        raise OptionError(message)


def check(config):
    """Reject impossible values with messages that say what was received."""
    _require(isinstance(config.epochs, int) and config.epochs >= 1, f"epochs must be >= 1. Received: epochs={config.epochs!r}.")
    _require(isinstance(config.batch_size, int) and config.batch_size >= 1,
             f"batch_size must be >= 1. Received: batch_size={config.batch_size!r}.")
    _require(isinstance(config.lr, (int, float)) and 0 < config.lr < math.inf,
             f"lr must be a finite number > 0. Received: lr={config.lr!r}.")
    _require(config.optimizer in OPTIMIZERS,
             f"optimizer must be one of {', '.join(OPTIMIZERS)}. Received: optimizer={config.optimizer!r}.")
    _require(config.schedule in SCHEDULES,
             f"schedule must be one of {', '.join(SCHEDULES)}. Received: schedule={config.schedule!r}.")
    _require(config.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}. Received: loss={config.loss!r}.")
    _require(config.engine in ENGINES, f"engine must be one of {', '.join(ENGINES)}. Received: engine={config.engine!r}.")
    _require(0.0 <= config.val_split < 1.0, f"val_split must be in [0, 1). Received: val_split={config.val_split!r}.")
    for name in ("weight_decay", "l1", "l2", "clipnorm"):
        value = getattr(config, name)
        _require(isinstance(value, (int, float)) and 0 <= value < math.inf,
                 f"{name} must be a finite number >= 0. Received: {name}={value!r}.")
    _require(isinstance(config.warmup_epochs, (int, float)) and not isinstance(config.warmup_epochs, bool)
             and 0 <= config.warmup_epochs < config.epochs,
             f"warmup_epochs must be >= 0 and fewer than the epochs ({config.epochs}). "
             f"Received: warmup_epochs={config.warmup_epochs!r}.")
    _require(not config.warmup_epochs or config.schedule in ("constant", "cosine"),
             f"warmup_epochs works with schedule constant or cosine. Received: schedule={config.schedule!r}.")
    _require(isinstance(config.label_smoothing, (int, float)) and 0 <= config.label_smoothing < 1,
             f"label_smoothing must be in [0, 1). Received: label_smoothing={config.label_smoothing!r}.")
    _require(not config.label_smoothing or config.loss in ("sparse_cce", "cce", "bce"),
             f"label_smoothing applies to the cross-entropy losses (sparse_cce, cce, bce). "
             f"Received: loss={config.loss!r}.")
    _require(isinstance(config.ema, (int, float)) and 0 <= config.ema < 1,
             f"ema must be a momentum in [0, 1) (0: off; 0.999 is usual). Received: ema={config.ema!r}.")
    _require(isinstance(config.early_stopping, int) and config.early_stopping >= 0,
             f"early_stopping must be >= 0 epochs. Received: early_stopping={config.early_stopping!r}.")
    _require(isinstance(config.limit, int) and config.limit >= 0, f"limit must be >= 0. Received: limit={config.limit!r}.")
    _require(isinstance(config.seed, int) and 0 <= config.seed < 2**32,
             f"seed must be an integer in [0, 2**32). Received: seed={config.seed!r}.")
    _require(isinstance(config.seq_len, int) and not isinstance(config.seq_len, bool) and config.seq_len >= 1,
             f"seq_len must be >= 1. Received: seq_len={config.seq_len!r}.")
    _require(0.0 <= config.test_split < 1.0, f"test_split must be in [0, 1). Received: test_split={config.test_split!r}.")
    _require(config.threads is None or (isinstance(config.threads, int) and not isinstance(config.threads, bool)
                                        and config.threads >= 1),
             f"threads must be an integer >= 1. Received: threads={config.threads!r}.")
    _require(config.channels in (None, 1, 3), f"channels must be 1 or 3. Received: channels={config.channels!r}.")
    _require(config.cache in CACHES, f"cache must be one of {', '.join(CACHES)}. Received: cache={config.cache!r}.")
    _require(config.vocab in VOCABS, f"vocab must be one of {', '.join(VOCABS)}. Received: vocab={config.vocab!r}.")
    _require(isinstance(config.margin, (int, float)) and 0 < config.margin < math.inf,
             f"margin must be > 0. Received: margin={config.margin!r}.")
    _require(isinstance(config.unfreeze_at, int) and not isinstance(config.unfreeze_at, bool)
             and config.unfreeze_at >= 0,
             f"unfreeze_at must be an epoch >= 0. Received: unfreeze_at={config.unfreeze_at!r}.")
    _require(config.devices is None or (isinstance(config.devices, (int, str)) and not isinstance(config.devices, bool)),
             f"devices must be a number of devices, 'all' or ids such as '0,1'. Received: devices={config.devices!r}.")
    for name in ("sync_bn", "scale_lr"):
        _require(isinstance(getattr(config, name), bool),
                 f"{name} must be true or false. Received: {name}={getattr(config, name)!r}.")
    _require(not config.unfreeze_at or config.freeze_backbone,
             f"unfreeze_at needs freeze_backbone (it ends the frozen phase). "
             f"Received: unfreeze_at={config.unfreeze_at}.")


def as_dict(config):
    return dataclasses.asdict(config)
