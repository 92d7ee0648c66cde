"""The representative models, exported once per test session (one subprocess per backend)."""

import json
import os

import pytest

from export_helpers import (OTHER_FORMAT_MODELS, OTHER_FORMATS, REPRESENTATIVE, build_small, residual_cnn_model,
                            variable_length_model)


@pytest.fixture(scope="session")
def zoo_exports(tmp_path_factory):
    """``{key: (checkpoint, model, {format: result})}``: the representative models and a small residual CNN (key
    ``residual_cnn``) in ONNX and SavedModel, ``OTHER_FORMAT_MODELS`` (the residual CNN among them) in
    ``OTHER_FORMATS``, and a model no format can hold (key ``variable_length``)."""
    import kzoo

    folder = str(tmp_path_factory.mktemp("zoo"))
    built = {key: build_small(name, options, folder) for key, (name, options) in REPRESENTATIVE.items()}
    built["residual_cnn"] = residual_cnn_model(folder)
    sources = [path for path, _ in built.values()] + [variable_length_model(folder)]
    results = kzoo.export.export_many(sources, ["onnx", "saved_model"], output_dir=os.path.join(folder, "out"),
                                       limit=200)
    results += kzoo.export.export_many([built[key][0] for key in OTHER_FORMAT_MODELS], OTHER_FORMATS,
                                       output_dir=os.path.join(folder, "out"), limit=200)
    if os.environ.get("KZOO_EXPORT_REPORT"):  # the figures for docs/export.md's matrix
        with open(os.environ["KZOO_EXPORT_REPORT"], "w", encoding="utf-8") as handle:
            json.dump([{k: r.get(k) for k in ("source", "format", "max_abs_diff", "top1_agreement", "samples",
                                              "error", "message")} for r in results], handle, indent=1)
    by_source = {}
    for result in results:
        by_source.setdefault(result["source"], {})[result["format"]] = result
    table = {key: (path, model, by_source[path]) for key, (path, model) in built.items()}
    table["variable_length"] = (sources[-1], None, by_source[sources[-1]])
    return table


def pytest_collection_modifyitems(config, items):
    """Exports run in subprocesses on torch and tensorflow whatever the test's backend, so under jax these tests
    would repeat the same exports: they run on the torch and tensorflow suites."""
    import keras

    if keras.backend.backend() != "jax":
        return
    skip = pytest.mark.skip(reason="exports are made and checked on torch and tensorflow (the jax suite skips them)")
    for item in items:
        if "tests/export/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)
