"""Shared fixtures. The backend comes from KERAS_BACKEND (``.ci/run`` runs the suite once per backend)."""

import os
import pathlib

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def shared_datasets():
    path = SHARED / "datasets"
    if not path.exists():
        pytest.skip("../shared/datasets is not present")
    return path


@pytest.fixture
def cli_runner():
    from click.testing import CliRunner

    return CliRunner()


@pytest.fixture
def backend():
    import keras

    return keras.backend.backend()


@pytest.fixture(scope="session")
def torchvision():
    """torchvision's model definitions, the publisher's own code that weight conversions are compared with.

    PyPI's wheel is a CUDA build whose C ops do not load on a CPU torch; the pure-Python models import once
    ``torch.library.register_fake`` (used only to declare those ops) is a no-op."""
    torch = pytest.importorskip("torch")
    register_fake = torch.library.register_fake
    torch.library.register_fake = lambda *args, **kwargs: (lambda fn: fn)
    try:
        return pytest.importorskip("torchvision")
    finally:
        torch.library.register_fake = register_fake
