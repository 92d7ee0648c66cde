"""`kzoo bench`: a tiny model for a few steps on the CPU, on the suite's backend; the error paths."""

import importlib.util
import json

import pytest

from kzoo_cli.main import cli

DEFAULT_ENGINE = {"torch": "torch", "tensorflow": "tf", "jax": "fit"}
ROW_KEYS = {"model", "mode", "runner", "backend", "engine", "engine_used", "precision", "device", "device_name",
            "batch_size", "steps", "samples_per_s", "ratio_to_native", "native_samples_per_s", "peak_memory_mb",
            "memory_kind", "macs", "flops_per_sample", "peak_tflops", "flop_fraction"}


def test_bench_json_rows_and_ratios(cli_runner, backend):
    pytest.importorskip("torch")  # the native twin
    engine = DEFAULT_ENGINE[backend]
    result = cli_runner.invoke(cli, ["bench", "lenet5", "--backends", backend, "--engines", engine, "--precision",
                                     "float32", "--steps", "3", "--warmup", "1", "--batch-size", "16", "--device",
                                     "cpu", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    expected = {(runner, mode) for runner in ("native_torch", "kzoo") for mode in ("inference", "train")}
    if backend == "torch" and all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript")):
        expected.add(("onnxruntime", "inference"))  # the exported file, timed in onnxruntime
    assert {(r["runner"], r["mode"]) for r in rows} == expected
    for row in rows:
        assert ROW_KEYS <= set(row), ROW_KEYS - set(row)
        own_process = row["runner"] != "onnxruntime"
        assert row["samples_per_s"] > 0 and (row["peak_memory_mb"] > 100 and row["memory_kind"] == "rss"
                                             if own_process else row["peak_memory_mb"] is None)
        assert row["flop_fraction"] is None and row["macs"] == 416_520  # no peak FLOP/s on a CPU
        assert row["flops_per_sample"] == (6 if row["mode"] == "train" else 2) * 416_520
    native = {r["mode"]: r for r in rows if r["runner"] == "native_torch"}
    for row in (r for r in rows if r["runner"] != "native_torch"):
        assert row["backend"] == backend and row["native_samples_per_s"] == native[row["mode"]]["samples_per_s"]
        assert row["ratio_to_native"] == pytest.approx(row["samples_per_s"] / row["native_samples_per_s"], abs=6e-4)
    train = next(r for r in rows if r["runner"] == "kzoo" and r["mode"] == "train")
    assert train["engine_used"] == engine and train["dtype_policy"] == "float32"


def test_mixed_precision_reports_the_engine_that_ran(cli_runner, backend):
    if backend != "torch":
        pytest.skip("the torch engine's fallback is a torch-backend matter")
    result = cli_runner.invoke(cli, ["bench", "mlp", "--backends", "torch", "--engines", "torch", "--precision",
                                     "mixed", "--steps", "2", "--warmup", "1", "--batch-size", "8", "--device",
                                     "cpu", "--no-inference"])
    assert result.exit_code == 0, result.output
    assert "mixed" in result.output and "x native" in result.output
    kzoo_line = next(line for line in result.output.splitlines() if " kzoo " in line)
    # without mixed precision inside the engine, the table says that fit trained it; with it, the torch engine
    assert "torch -> fit" in kzoo_line or " torch " in kzoo_line.split("mixed")[0]


@pytest.mark.parametrize("args, message", [
    (["lenet"], "Did you mean"),
    (["lenet5", "--backends", "pytorch"], "Unknown backend 'pytorch'"),
    (["lenet5", "--engines", "warp"], "Unknown engine 'warp'"),
])
def test_user_mistakes_exit_2(cli_runner, args, message):
    result = cli_runner.invoke(cli, ["bench", *args, "--device", "cpu"])
    assert result.exit_code == 2 and "Error:" in result.output and message in result.output, result.output


def test_nothing_installed_exits_2(cli_runner, monkeypatch):
    import kzoo.bench

    monkeypatch.setattr(kzoo.bench, "installed_backends", lambda: [])
    result = cli_runner.invoke(cli, ["bench", "lenet5", "--device", "cpu"])
    assert result.exit_code == 2 and "Error: No Keras backend is installed" in result.output


def test_help_has_examples(cli_runner):
    result = cli_runner.invoke(cli, ["bench", "--help"])
    assert result.exit_code == 0 and "kzoo bench lenet5" in result.output and "--no-inference" in result.output


def test_gpu_table_from_given_rows(cli_runner, monkeypatch):
    """The table of a GPU run (rows as kzoo.bench returns them): FLOP/s fraction or 'unknown', fallbacks, failures."""
    import kzoo.bench

    common = {"model": "lenet5", "device": "cuda", "batch_size": 256, "device_name": "NVIDIA H200", "load_avg_1m": 1.0,
              "cpu_count": 16, "memory_kind": "cuda_max_allocated", "peak_memory_mb": 812.0}
    rows = [
        {**common, "runner": "native_torch", "backend": None, "engine": "eager", "engine_used": "eager",
         "precision": "mixed", "mode": "train", "samples_per_s": 100_000.0, "ratio_to_native": 1.0,
         "flop_fraction": 0.000505},
        {**common, "runner": "kzoo", "backend": "torch", "engine": "torch", "engine_used": "fit", "precision": "mixed",
         "mode": "train", "samples_per_s": 50_000.0, "ratio_to_native": 0.5, "flop_fraction": None,
         "notes": ["The torch engine cannot train lenet5 (mixed precision is trained by fit); using fit."]},
        {**common, "runner": "kzoo", "backend": "jax", "engine": "fit", "precision": "mixed", "mode": "train",
         "error": "timed out after 90 s"},
    ]
    monkeypatch.setattr(kzoo.bench, "bench", lambda *a, **k: rows)
    result = cli_runner.invoke(cli, ["bench", "lenet5", "--device", "cuda"])
    assert result.exit_code == 1, result.output  # a configuration failed: reported, and the status says so
    lines = result.output.splitlines()
    assert "NVIDIA H200" in lines[0] and "% peak FLOP/s" in result.output
    assert "0.1" in next(line for line in lines if "native_torch" in line)  # 0.000505 -> 0.1 %
    fallback = next(line for line in lines if "torch -> fit" in line)
    assert "unknown" in fallback and "0.50" in fallback
    assert "failed" in next(line for line in lines if " jax " in line)
    assert "jax fit mixed failed: timed out after 90 s" in result.output
    assert "mixed precision is trained by fit" in result.output and "device allocator peak" in result.output
