"""Fixtures of the engine tests."""

import pytest


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """One tiny real training, shared by the tests that read a finished run folder (listing, card, export)."""
    import kzoo

    root = tmp_path_factory.mktemp("runs")
    result = kzoo.train("lenet5", epochs=2, limit=120, batch_size=60, val_split=0.25, quiet=True,
                        output=str(root / "lenet5-tiny-1"))
    return result
