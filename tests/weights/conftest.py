"""The publishers' own model code, as references for the weight converters."""

import pytest


@pytest.fixture(scope="session")
def torchvision():
    """torchvision's model definitions. PyPI's wheel is a CUDA build whose C ops do not load on a CPU torch; the
    pure-Python models import once ``torch.library.register_fake`` (used only to declare those ops) is a no-op."""
    torch = pytest.importorskip("torch")
    register_fake = torch.library.register_fake
    torch.library.register_fake = lambda *args, **kwargs: (lambda fn: fn)
    try:
        return pytest.importorskip("torchvision")
    finally:
        torch.library.register_fake = register_fake
