"""Every registered model exports to ONNX and TF SavedModel and matches Keras there (``docs/export.md``).

Every model is built, then exported and verified (64 samples) by one subprocess per format: 20 minutes or more on
2 CPU cores, over an hour under load, so CI deselects it (``-m "not export_matrix"``); run it with
``python -m pytest -m export_matrix`` (``KZOO_EXPORT_REPORT=FILE.json`` writes the figures).
"""

import json
import os

import pytest

import kzoo
from export_helpers import REPRESENTATIVE, build_small

# the variants the registry does not list as names of their own but the export must hold too
EXTRA = {key: value for key, value in REPRESENTATIVE.items() if value[1]}


@pytest.mark.slow
@pytest.mark.export_matrix
def test_every_registered_model_exports_to_onnx_and_saved_model(tmp_path):
    folder = str(tmp_path)
    sources = [build_small(name, {}, folder)[0] for name in kzoo.list_models()]
    sources += [build_small(name, options, folder)[0] for name, options in EXTRA.values()]
    results = kzoo.export.export_many(sources, ["onnx", "saved_model"], output_dir=os.path.join(folder, "out"),
                                      limit=64)
    if os.environ.get("KZOO_EXPORT_REPORT"):  # the figures for docs/export.md's matrix
        with open(os.environ["KZOO_EXPORT_REPORT"], "w", encoding="utf-8") as handle:
            json.dump([{k: r.get(k) for k in ("source", "format", "max_abs_diff", "top1_agreement", "samples",
                                              "error", "message")} for r in results], handle, indent=1)
    failed = [r["message"] if "error" in r else kzoo.export.verification_line(r) for r in results
              if "error" in r or not r["ok"]]
    assert not failed, "\n".join(failed)
    for result in results:
        if result["top1_agreement"] is not None:
            assert result["top1_agreement"] >= 0.995, kzoo.export.verification_line(result)
