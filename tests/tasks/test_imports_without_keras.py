"""Importing a task (or the engine modules that score runs through the tasks) never imports keras.

That tasks never import the engine, and that no import circle exists, is checked for every module by
``tests/test_imports.py``.
"""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAYER = ["kzoo.tasks", "kzoo.tasks.names", "kzoo.tasks.base", "kzoo.tasks.vocab", "kzoo.tasks.samplers",
         "kzoo.tasks.classification", "kzoo.tasks.language_model", "kzoo.tasks.siamese",
         "kzoo.engine.evaluation", "kzoo.engine.generation", "kzoo.engine.forward", "kzoo.engine.inference",
         "kzoo.engine.runs", "kzoo.factory"]

# kzoo.tasks.samplers imports keras (its per-epoch batches subclass keras.utils.PyDataset); every other module
# is imported before the backend is chosen (the trainer reads task recipes first), so it must not.
@pytest.mark.parametrize("name", [name for name in LAYER if name != "kzoo.tasks.samplers"])
def test_each_module_imports_alone_without_keras(name):
    code = f"import sys, {name}; assert 'keras' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)
