"""The house rules on imports, read from the source (nothing is imported):

* no import circle among kzoo's own modules (``kzoo/`` and ``cli/``, installed as ``kzoo_cli``), counting
  module-level and function-local imports alike (a circle broken only by a late import is still a circle);
  imports under ``if TYPE_CHECKING:`` do not count;
* model families (``kzoo/models/``) and tasks (``kzoo/tasks/``) know Keras, never the backend: no torch,
  tensorflow or jax, and nothing of the training engine.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = {"kzoo": ROOT / "kzoo", "kzoo_cli": ROOT / "cli"}
BACKEND_SPECIFIC = ("torch", "tensorflow", "jax", "jaxlib", "kzoo.engine")


def _modules():
    """``{module name: (path, is_package)}`` of every ``.py`` file of kzoo and kzoo_cli."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _is_type_checking(test):
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree):
    """Every ``import``/``from`` statement, at any depth, except the body of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imported_names(module):
    """The absolute names ``module`` imports: ``from a import b`` gives ``a.b`` when that is a module, else ``a``."""
    path, is_package = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[:len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        for alias in node.names:
            full = f"{base}.{alias.name}"
            names.add(full if full in MODULES else base)
    return names


def internal_graph():
    """``{module: {kzoo modules it imports}}``; ``import kzoo.a.b`` points at ``kzoo.a.b`` (its packages run
    first in any case, so a package importing its own submodules is not a circle)."""
    graph = {}
    for module in MODULES:
        targets = set()
        for name in imported_names(module):
            while name and name not in MODULES:  # an attribute imported from a module: the module
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycles(graph):
    """The strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _a_circle(graph, component):
    """One concrete circle through the component's first module, as ``a -> b -> ... -> a``."""
    members, start = set(component), component[0]
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for target in sorted(graph[path[-1]] & members):
            if target == start:
                return " -> ".join(path + [start])
            if target not in seen:
                seen.add(target)
                paths.append(path + [target])
    return ""


def test_the_walk_sees_every_package():
    assert {"kzoo", "kzoo.registry", "kzoo.engine.trainer", "kzoo_cli.main", "kzoo_cli.commands.train"} <= set(MODULES)


def test_the_walk_reads_function_local_and_relative_imports(tmp_path):
    source = ("from typing import TYPE_CHECKING\nfrom . import registry\nif TYPE_CHECKING:\n"
              "    from kzoo.engine import trainer\n\ndef f():\n    from .engine.runs import claim\n")
    path = tmp_path / "probe.py"
    path.write_text(source)
    MODULES["kzoo._probe"] = (path, False)
    try:
        assert imported_names("kzoo._probe") >= {"kzoo.registry", "kzoo.engine.runs"}
        assert "kzoo.engine.trainer" not in imported_names("kzoo._probe")
    finally:
        del MODULES["kzoo._probe"]
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert _a_circle(graph, ["a", "b", "c"]) == "a -> b -> c -> a"


def test_no_import_circles():
    graph = internal_graph()
    cycles = find_cycles(graph)
    described = [f"{len(c)} modules: {', '.join(c)}\n    e.g. {_a_circle(graph, c)}" for c in cycles]
    assert not cycles, "import circles among kzoo's modules:\n  " + "\n  ".join(described)


def test_models_and_tasks_do_not_know_the_backend():
    offenders = []
    for module in MODULES:
        if not module.startswith(("kzoo.models.", "kzoo.tasks.")) and module not in ("kzoo.models", "kzoo.tasks"):
            continue
        for name in sorted(imported_names(module)):
            if any(name == banned or name.startswith(banned + ".") for banned in BACKEND_SPECIFIC):
                offenders.append(f"{module} imports {name}")
    assert not offenders, "models and tasks must import only keras-level code:\n  " + "\n  ".join(offenders)
