"""The tasks sit below the engine: no import circles, and importing a task never imports keras."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAYER = ["kzoo.tasks", "kzoo.tasks.names", "kzoo.tasks.base", "kzoo.tasks.vocab", "kzoo.tasks.samplers",
         "kzoo.tasks.classification", "kzoo.tasks.language_model", "kzoo.tasks.siamese",
         "kzoo.engine.evaluation", "kzoo.engine.generation", "kzoo.engine.forward"]
# the one engine module a task may call: the backend's fast inference (a leaf that imports no task)
INFERENCE_SEAM = {"kzoo.engine.forward"}


def module_path(name):
    path = ROOT.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def kzoo_imports(name):
    """Every kzoo module ``name`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(module_path(name).read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("kzoo"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kzoo"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if module_path(sub).exists() else node.module)
    return found - {name}


def test_no_import_circles_among_tasks_evaluation_and_generation():
    graph = {name: kzoo_imports(name) & set(LAYER) for name in LAYER}
    graph["kzoo.tasks"] = set()  # the package re-exports its modules; they never import the package's names

    def visit(name, path):
        assert name not in path, " -> ".join([*path, name])
        for target in graph[name]:
            visit(target, [*path, name])

    for name in LAYER:
        visit(name, [])


def test_tasks_never_import_the_engine():
    """Tasks score models through the inference seam only; the seam itself knows no task."""
    for name in LAYER:
        if name.startswith("kzoo.tasks"):
            assert not {m for m in kzoo_imports(name) if m.startswith("kzoo.engine")} - INFERENCE_SEAM, name
    for name in INFERENCE_SEAM:
        assert not {m for m in kzoo_imports(name) if m.startswith(("kzoo.tasks", "kzoo.engine.evaluation",
                                                                   "kzoo.engine.trainer"))}, name


# kzoo.tasks.samplers imports keras (its per-epoch batches subclass keras.utils.PyDataset); every other module
# is imported before the backend is chosen (the trainer reads task recipes first), so it must not.
@pytest.mark.parametrize("name", [name for name in LAYER if name != "kzoo.tasks.samplers"])
def test_each_module_imports_alone_without_keras(name):
    code = f"import sys, {name}; assert 'keras' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)
