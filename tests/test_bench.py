"""kzoo.bench: peak FLOP/s table, MAC -> FLOP fraction, the native twins and the checks made before anything runs."""

import pytest

from kzoo import bench
from kzoo.errors import KzooError

LENET5_MACS = (28 * 28 * 6 * 5 * 5 * 1      # conv 6@5x5 on the zero-padded 32x32 input: 28x28 outputs
               + 10 * 10 * 16 * 5 * 5 * 6   # conv 16@5x5 on 14x14x6: 10x10 outputs
               + 400 * 120 + 120 * 84 + 84 * 10)


def test_lenet5_macs_by_hand_match_the_summary():
    from kzoo.summary import summary

    assert LENET5_MACS == 416_520
    assert summary("lenet5", input_shape=(28, 28, 1), num_classes=10)["macs"] == LENET5_MACS


def test_flop_fraction_against_a_hand_computation():
    # 10,000 samples/s of training, 6 FLOPs per MAC and sample: 10,000 x 2,499,120 = 2.49912e10 FLOP/s;
    # on an H200's 989 TFLOP/s (bf16 dense) that is 2.49912e10 / 9.89e14 = 2.52692e-5
    assert bench.flop_fraction(10_000, LENET5_MACS, "train", 989.0) == pytest.approx(2.52692e-5, rel=1e-5)
    # inference: 2 FLOPs per MAC; 50,000 samples/s x 833,040 = 4.1652e10 FLOP/s of 67 TFLOP/s (fp32) = 6.21672e-4
    assert bench.flop_fraction(50_000, LENET5_MACS, "inference", 67.0) == pytest.approx(6.21672e-4, rel=1e-5)
    assert bench.flop_fraction(10_000, LENET5_MACS, "train", None) is None


@pytest.mark.parametrize("name, mode, peak", [
    ("NVIDIA H200", "16bit", 989.0), ("NVIDIA H200", "tf32", 494.0), ("NVIDIA H200", "fp32", 67.0),
    ("NVIDIA H100 80GB HBM3", "16bit", 989.0), ("NVIDIA H100 PCIe", "fp32", 51.0),
    ("NVIDIA A100-SXM4-80GB", "tf32", 156.0), ("Some Future GPU", "16bit", None), (None, "fp32", None),
])
def test_peak_tflops_by_device_name(name, mode, peak):
    assert bench.peak_tflops(name, mode) == peak


def test_native_twins_have_kzoos_parameter_counts():
    torch = pytest.importorskip("torch")  # noqa: F841
    from kzoo.bench import native_torch
    from kzoo.summary import summary

    for name in ("lenet5", "mlp", "lstm", "convnet2"):
        net = native_torch.make(name)
        native = sum(p.numel() for p in net.parameters() if p.requires_grad)
        kzoo = summary(name, input_shape=native_torch.kzoo_input_shape(name), num_classes=10,
                       **native_torch.KZOO_OPTIONS.get(name, {}))["trainable_params"]
        extra = 4 * 128 if name == "lstm" else 0  # torch's LSTM has two biases per gate, Keras's one
        assert native == kzoo + extra, name


def test_a_model_without_a_twin_is_planned_without_a_ratio():
    pytest.importorskip("torch")
    todo = bench.plan("rnn", backends=["torch"], precisions=["float32"], device="cpu")
    assert not todo["native"] and "no hand-written PyTorch twin" in todo["notes"][0]
    other_shape = bench.plan("lenet5", backends=["torch"], device="cpu", input_shape=(32, 32, 1))
    assert not other_shape["native"] and "no ratio" in other_shape["notes"][0]
    twin = bench.plan("lenet5", backends=["torch"], engines=["torch", "tf"], device="cpu")
    assert twin["native"] and twin["configs"] == [("torch", "torch", "float32"), ("torch", "torch", "mixed")]


@pytest.mark.parametrize("kwargs, message", [
    ({"backends": ["pytorch"]}, "Unknown backend 'pytorch'"),
    ({"engines": ["turbo"]}, "Unknown engine 'turbo'"),
    ({"precisions": ["fp8"]}, "Unknown precision 'fp8'"),
    ({"backends": ["jax"], "engines": ["torch"]}, "No engine of torch runs on jax"),
])
def test_user_mistakes_are_kzoo_errors(kwargs, message, monkeypatch):
    monkeypatch.setattr(bench, "installed_backends", lambda: ["torch", "tensorflow", "jax"])
    with pytest.raises(KzooError, match=message):
        bench.plan("lenet5", device="cpu", **kwargs)


def test_nothing_installed_and_missing_backends(monkeypatch):
    monkeypatch.setattr(bench, "installed_backends", lambda: [])
    with pytest.raises(KzooError, match="No Keras backend is installed"):
        bench.plan("lenet5", device="cpu")
    monkeypatch.setattr(bench, "installed_backends", lambda: ["torch"])
    with pytest.raises(KzooError, match="The jax backend is not installed here. Installed: torch"):
        bench.plan("lenet5", backends=["jax"], device="cpu")
    monkeypatch.setattr(bench, "cuda_available", lambda: False)
    with pytest.raises(KzooError, match="no CUDA GPU is visible"):
        bench.plan("lenet5", backends=["torch"], device="cuda")
