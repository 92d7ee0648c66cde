"""The measured tables of the docs equal what ``benchmarks/tables.py`` renders from their raw JSONL lines."""

import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tables():
    path = os.path.join(ROOT, "benchmarks", "tables.py")
    spec = importlib.util.spec_from_file_location("kzoo_benchmark_tables", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("doc", ["docs/benchmarks.md", "docs/accuracy.md"])
def test_every_table_of_the_doc_is_its_rendering(tables, doc):
    have, want = tables.in_doc(doc), tables.rendered(doc)
    assert set(have) == set(want), f"{doc}: tables with markers {sorted(have)}, rendered {sorted(want)}"
    for name in want:
        assert have[name] == want[name], f"{doc}: table {name} differs; run python benchmarks/tables.py --write"


def test_the_cpu_ratio_cells_are_the_last_kept_raw_lines(tables):
    """Read independently of the renderer: every cell of the doc's ratio table against the JSONL."""
    last = {}
    with open(os.path.join(ROOT, "benchmarks", "results", "cpu-2026-11-28.jsonl"), encoding="utf-8") as handle:
        for text in handle:
            record = json.loads(text)
            if "ratio" in record and record.get("kept", True):
                last[(record["model"], record["backend"], record["engine"])] = record["ratio"]
    body = tables.in_doc("docs/benchmarks.md")["cpu-ratios"].splitlines()
    columns = [c.strip().replace("`", "").split() for c in body[0].strip("|").split("|")[1:]]
    checked = 0
    for row in body[2:]:
        model, *cells = [c.strip().strip("*") for c in row.strip("|").split("|")]
        for (backend, engine), cell in zip(columns, cells):
            assert float(cell) == pytest.approx(last[(model, backend, engine)], abs=0.0051), (model, backend, engine)
            checked += 1
    assert checked == 36
    assert last[("mlp", "tensorflow", "tf")] == 0.864  # line 32 (XLA, not kept) is not the MLP's tf figure
