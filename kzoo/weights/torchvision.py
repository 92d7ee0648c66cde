"""torchvision's ImageNet ``state_dict`` files (``resnet18-f37072fd.pth``, ...) for kzoo's ResNet, VGG, DenseNet.

One table per family maps torchvision's module paths to kzoo's layer names; the tensors are converted to
Keras' layouts: convolution kernels OIHW to HWIO, dense weights (out, in) to (in, out), batch-norm weight /
bias / running mean / running variance to gamma / beta / moving mean / moving variance.

VGG's first fully connected layer needs its rows permuted: torchvision flattens the last 7x7 feature map in
NCHW order (channel, row, column), Keras flattens NHWC (row, column, channel).

``torch`` is imported only here, only to read a ``.pth`` file (with ``weights_only=True``: tensors, no code),
and works whichever Keras backend runs the model.
"""

import io
import re

import numpy as np

from kzoo.errors import KzooError, first_line

PREPROCESSING = "imagenet"

# module path (a state_dict key without its last ".param") -> kzoo layer name
_RESNET = (
    (r"conv1", lambda m: "conv1_conv"),
    (r"bn1", lambda m: "conv1_bn"),
    (r"layer(\d)\.(\d+)\.(conv|bn)(\d)",
     lambda m: f"conv{int(m[1]) + 1}_block{int(m[2]) + 1}_{m[4]}_{m[3]}"),
    (r"layer(\d)\.(\d+)\.downsample\.([01])",
     lambda m: f"conv{int(m[1]) + 1}_block{int(m[2]) + 1}_0_{'conv' if m[3] == '0' else 'bn'}"),
    (r"fc", lambda m: "logits"),
)
_DENSENET_LAYER = {"norm1": "0_bn", "conv1": "1_conv", "norm2": "1_bn", "conv2": "2_conv"}
_DENSENET = (
    (r"features\.conv0", lambda m: "conv1_conv"),
    (r"features\.norm0", lambda m: "conv1_bn"),
    (r"features\.denseblock(\d)\.denselayer(\d+)\.(norm1|conv1|norm2|conv2)",
     lambda m: f"conv{int(m[1]) + 1}_block{m[2]}_{_DENSENET_LAYER[m[3]]}"),
    (r"features\.transition(\d)\.(norm|conv)",
     lambda m: f"pool{int(m[1]) + 1}_{'bn' if m[2] == 'norm' else 'conv'}"),
    (r"features\.norm5", lambda m: "bn"),
    (r"classifier", lambda m: "logits"),
)
# VGG's features.N are numbered by position in an nn.Sequential (conv, [bn,] relu, ..., pool): they are paired
# in order with kzoo's block{b}_conv{c} and block{b}_bn{c} layers.
_VGG = (
    (r"classifier\.0", lambda m: "fc1"),
    (r"classifier\.3", lambda m: "fc2"),
    (r"classifier\.6", lambda m: "logits"),
)
TABLES = {"resnet": _RESNET, "densenet": _DENSENET, "vgg": _VGG}
# torchvision's densenet*.pth were saved with older names ("norm.1" for "norm1"); torchvision renames them too
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def read_state_dict(data, source):
    """The tensors of a ``.pth`` file's bytes as ``{key: numpy array}``."""
    try:
        import torch
    except ImportError:
        raise KzooError(f"Reading {source} (a PyTorch .pth file) needs PyTorch, on any Keras backend: "
                        f"pip install torch") from None
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise KzooError(f"{source} is not a PyTorch state_dict that loads with weights_only=True "
                        f"({type(exc).__name__}: {first_line(exc)}).") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # a training checkpoint
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "numpy") for v in state.values()):
        raise KzooError(f"{source} does not hold a state_dict (a mapping of names to tensors).")
    return {key: value.detach().cpu().float().numpy() if value.is_floating_point() else value.numpy()
            for key, value in state.items()}


def _modules(state):
    """``{module path: {param: array}}`` in file order, ``num_batches_tracked`` left out."""
    modules = {}
    for key, value in state.items():
        key = _OLD_DENSENET_KEY.sub(r"\1\2", key)
        path, _, param = key.rpartition(".")
        if param != "num_batches_tracked":
            modules.setdefault(path, {})[param] = value
    return modules


def _keras_arrays(params):
    """A torch module's parameters in the order and layout of the Keras layer's weights."""
    if "running_mean" in params:
        return [params["weight"], params["bias"], params["running_mean"], params["running_var"]]
    weight = params["weight"]
    if weight.ndim == 4:
        kernel = weight.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    elif weight.ndim == 2:
        kernel = weight.T
    else:
        raise KzooError(f"unexpected torchvision parameter of shape {weight.shape}")
    return [np.ascontiguousarray(kernel)] + ([params["bias"]] if "bias" in params else [])


def _vgg_features(modules, model):
    """Pair VGG's ``features.N`` convolutions and batch norms, in order, with kzoo's layer names."""
    names = {}
    for kind, pattern in (("conv", r"block\d+_conv\d+"), ("bn", r"block\d+_bn\d+")):
        torch_paths = sorted((p for p, params in modules.items() if p.startswith("features.")
                              and ("running_mean" in params) == (kind == "bn")), key=lambda p: int(p.split(".")[1]))
        kzoo_names = [layer.name for layer in model.layers if re.fullmatch(pattern, layer.name)]
        if len(torch_paths) != len(kzoo_names):
            raise KzooError(f"the file has {len(torch_paths)} VGG {kind} layers, {model.name} has {len(kzoo_names)}: "
                            f"is it for another VGG variant?")
        names.update(zip(torch_paths, kzoo_names))
    return names


def _vgg_flatten_rows(kernel, model):
    """fc1's kernel rows reordered from torch's (C, 7, 7) flatten to Keras' (7, 7, C)."""
    _, height, width, channels = model.get_layer("flatten").input.shape
    if (height, width) != (7, 7):
        raise KzooError(f"torchvision's VGG classifier reads a 7x7 feature map: build {model.name} for 224x224 "
                        f"inputs (--input-shape 224,224,3 or -o image_size=224). Received: a {height}x{width} map.")
    if kernel.shape[0] != 49 * channels:
        raise KzooError(f"the file's fc1 reads {kernel.shape[0] // 49} channels, {model.name} has {channels}: "
                        f"was it saved with another width_multiplier?")
    return kernel.reshape(channels, 7, 7, -1).transpose(1, 2, 0, 3).reshape(49 * channels, -1)


def convert(state, family, model):
    """``{kzoo layer name: [arrays]}`` from a torchvision state_dict for ``model`` of ``family``.

    Raises:
        KzooError: a family torchvision does not publish, or a key no table row maps.
    """
    if family not in TABLES:
        raise KzooError(f"torchvision weights exist for resnet, vgg and densenet models, not {family}.")
    modules = _modules(state)
    named = _vgg_features(modules, model) if family == "vgg" else {}
    unknown = []
    for path in modules:
        if path in named:
            continue
        for pattern, name in TABLES[family]:
            match = re.fullmatch(pattern, path)
            if match:
                named[path] = name(match)
                break
        else:
            unknown.append(path)
    if unknown:
        raise KzooError(f"the file has torchvision modules that a {family} does not: {', '.join(unknown[:5])}"
                        f"{' ...' if len(unknown) > 5 else ''}. Is it a {family} state_dict?")
    arrays = {named[path]: _keras_arrays(params) for path, params in modules.items()}
    if family == "vgg":
        arrays["fc1"][0] = _vgg_flatten_rows(arrays["fc1"][0], model)
    return arrays
