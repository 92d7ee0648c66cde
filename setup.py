"""Package discovery, the one thing ``pyproject.toml`` cannot say: ``cli/`` installs as the package ``kzoo_cli``.

``[tool.setuptools.packages.find]`` names a package after its folder, so it would install ``cli/`` as a
top-level ``cli``. Here every package under ``kzoo/`` and ``cli/`` is found by setuptools' own finder and
``cli``'s are renamed; nothing is listed by hand (tests/packaging checks the built wheel and sdist).
"""

from setuptools import find_packages, setup

CLI_FOLDER, CLI_PACKAGE = "cli", "kzoo_cli"

cli_packages = find_packages(include=[CLI_FOLDER, f"{CLI_FOLDER}.*"])
setup(
    packages=find_packages(include=["kzoo", "kzoo.*"])
    + [CLI_PACKAGE + name[len(CLI_FOLDER):] for name in cli_packages],
    package_dir={CLI_PACKAGE: CLI_FOLDER},
)
