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
