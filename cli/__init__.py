"""The kzoo command line, installed as the package ``kzoo_cli``.

Each command lives in its own module under ``commands/`` and is a thin layer over the Python API: it
parses, calls one public function of :mod:`kzoo`, and prints.
"""
