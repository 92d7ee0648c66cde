"""Every registered model exports to ONNX and TF SavedModel and matches Keras there (``docs/export.md``).

Every model is built at the harness's small shapes, then exported and verified (64 samples) by one torch and one
tensorflow subprocess running side by side. All of them take 20-30 minutes on 2 shared CPU cores, two thirds of
it in five deep variants, so by default the test leaves out the deeper members of a family whose blocks and layers
a shallower member already exports here (``DEEPER``: ResNet-101/152 repeat ResNet-50's bottlenecks, DenseNet-169/201
DenseNet-121's dense blocks, VGG-13/16/19 VGG-11's stages) and takes about 8 minutes: it is ``slow`` (the torch
suite runs it). ``KZOO_EXPORT_MATRIX=all`` exports every registered model (the run behind ``docs/export.md``'s
matrix); ``KZOO_EXPORT_REPORT=FILE.json`` writes the figures. The representative models
(``export_helpers.REPRESENTATIVE``) are exported on every suite by ``conftest.py``.
"""

import json
import os

import pytest

import kzoo
from export_helpers import REPRESENTATIVE, build_small

# the variants the registry does not list as names of their own but the export must hold too
EXTRA = {key: value for key, value in REPRESENTATIVE.items() if value[1]}

# deeper variants whose building blocks a shallower registered model of the same family already covers
DEEPER = {"resnet101", "resnet152", "densenet169", "densenet201", "vgg13", "vgg16", "vgg19", "vgg13_bn", "vgg16_bn",
          "vgg19_bn"}

# (model, format) -> the start of the reason the exporter gives (exit 2) for a model the format cannot hold
CANNOT_EXPORT = {}


@pytest.mark.slow
def test_every_registered_model_exports_to_onnx_and_saved_model(tmp_path):
    folder = str(tmp_path)
    names = kzoo.list_models()
    assert {"lstm", "gru", "bilstm", "bigru", "siamese", "mobilenet_v1", "squeezenet1_1"} <= set(names)
    assert DEEPER <= set(names) and {"resnet50", "densenet121", "vgg11", "vgg11_bn"} <= set(names)
    if os.environ.get("KZOO_EXPORT_MATRIX") != "all":
        names = [name for name in names if name not in DEEPER]
    sources = {build_small(name, {}, folder)[0]: name for name in names}
    sources.update({build_small(name, options, folder)[0]: key for key, (name, options) in EXTRA.items()})
    results = kzoo.export.export_many(list(sources), ["onnx", "saved_model"], output_dir=os.path.join(folder, "out"),
                                      limit=64)
    if os.environ.get("KZOO_EXPORT_REPORT"):  # the figures for docs/export.md's matrix
        with open(os.environ["KZOO_EXPORT_REPORT"], "w", encoding="utf-8") as handle:
            json.dump([dict({k: r.get(k) for k in ("format", "max_abs_diff", "top1_agreement", "samples", "seconds",
                                                   "error", "message")}, model=sources[r["source"]])
                       for r in results], handle, indent=1)
    assert len(results) == 2 * len(sources)
    problems = []
    for result in results:
        key = (sources[result["source"]], result["format"])
        if key in CANNOT_EXPORT:
            if result.get("error") != "unsupported" or CANNOT_EXPORT[key] not in result.get("message", ""):
                problems.append(f"{key}: expected the reason {CANNOT_EXPORT[key]!r}, got {result}")
        elif "error" in result:
            problems.append(f"{key}: {result['message']}")
        elif not result["ok"] or not result["samples"]:
            problems.append(kzoo.export.verification_line(result))
        elif result["top1_agreement"] is not None and result["top1_agreement"] < 0.995:
            problems.append(f"{key}: top-1 agreement {result['top1_agreement']}")
    assert not problems, "\n".join(problems)
