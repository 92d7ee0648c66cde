"""Package discovery, the one thing ``pyproject.toml`` cannot say: ``cli/`` installs as the package ``kzoo_cli``.

``[tool.setuptools.packages.find]`` names a package after its folder, so it would install ``cli/`` as a
top-level ``cli``. Here every package under ``kzoo/`` and ``cli/`` is found by setuptools' own finder and
``cli``'s are renamed; nothing is listed by hand (tests/test_packaging.py checks the built wheel and sdist).
Namespace packages are found too, so that folders holding only data (``kzoo/data/embedded``) are packages.
"""

from setuptools import find_namespace_packages, setup

CLI_FOLDER, CLI_PACKAGE = "cli", "kzoo_cli"


def _packages(top):
    return find_namespace_packages(include=[top, f"{top}.*"], exclude=["*__pycache__"])


setup(
    packages=_packages("kzoo") + [CLI_PACKAGE + name[len(CLI_FOLDER):] for name in _packages(CLI_FOLDER)],
    package_dir={CLI_PACKAGE: CLI_FOLDER},
)
