"""keras.applications' ImageNet weight files (legacy ``.h5``) for kzoo's VGG16/19 and DenseNet121/169/201.

kzoo's layer names are keras.applications' own (``block1_conv1``, ``conv2_block1_0_bn``, ``fc1``), except the
classifier, which kzoo splits into a ``logits`` Dense and a softmax: keras.applications' ``predictions`` Dense
goes to ``logits``. The layouts match for VGG16/19 and DenseNet121/169/201 (keras.applications' DenseNet uses a
batch-norm epsilon of 1.001e-5 where kzoo and torchvision use 1e-5: 5e-9 relative on the normalised values).
keras.applications' ResNet50/101/152 are ResNet v1 (stride on the first 1x1, biased convolutions) and have no
18/34 variants: they do not fit kzoo's torchvision-layout ResNets, so no table for them.

Preprocessing: VGG's weights expect caffe-style input (BGR, 0-255, mean subtracted); DenseNet's the
ImageNet mean/std on RGB in [0, 1].
"""

import io

from kzoo.errors import KzooError

PREPROCESSING = {"vgg": "caffe", "densenet": "imagenet"}
# the published files come from Keras 2, whose DenseNet named its stem "conv1/conv", "conv1/bn" and its
# classifier "fc1000"
_RENAMED = {"predictions": "logits", "fc1000": "logits"}


def read_h5(data, source):
    """``{layer name: [arrays]}`` of a legacy Keras ``.h5`` weights file (or a full model's ``model_weights``)."""
    import h5py

    try:
        with h5py.File(io.BytesIO(data), "r") as handle:
            group = handle["model_weights"] if "model_weights" in handle else handle
            if "layer_names" not in group.attrs:
                raise KzooError(f"{source} is not a keras.applications weights file (no layer_names). A kzoo "
                                f"weights file ends in .weights.h5.")
            arrays = {}
            for raw in group.attrs["layer_names"]:
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                weight_names = [w.decode() if isinstance(w, bytes) else str(w)
                                for w in group[name].attrs.get("weight_names", [])]
                if weight_names:
                    arrays[_RENAMED.get(name, name.replace("/", "_"))] = [group[name][w][()] for w in weight_names]
            return arrays
    except OSError as exc:
        raise KzooError(f"{source} is not an HDF5 file ({exc}).") from None


def convert(arrays, family, model):
    """The file's arrays by kzoo layer name (the layouts match, so only the classifier is renamed)."""
    if family not in PREPROCESSING:
        raise KzooError(f"keras.applications weights fit kzoo's vgg16/vgg19 and densenet121/169/201, not {family}.")
    return arrays
