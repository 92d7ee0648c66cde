"""Plugin distributions: what they provide, whether they work, and their serialisable layers.

A plugin is any installed distribution with entry points in ``kzoo.models`` or ``kzoo.datasets`` (and,
for custom layers saved inside ``.keras`` files, ``kzoo.layers``: ``name = "package.module"``). Listing reads
metadata only; nothing here imports a plugin's module in this process. :func:`check_imports` imports a
distribution's modules in a separate Python process, so that a plugin that hangs, exits or crashes at import
cannot take the caller with it.
"""

import importlib
import importlib.metadata
import json
import subprocess
import sys

from kzoo.errors import first_line
from kzoo.registry import BUILTIN_DISTRIBUTION, _normalize, datasets, models, plugins_disabled, strict_plugins

LAYER_GROUP = "kzoo.layers"
CHECK_TIMEOUT_S = 300

# Runs in the child process of check_imports: with the parent's sys.path (argv[1], JSON), import each
# "module[:attr]" (argv[2:]) and print what failed.
_CHECK_SCRIPT = """
import importlib, json, sys
sys.path[:] = json.loads(sys.argv[1])
from kzoo.backend import set_backend
from kzoo.errors import first_line
set_backend()
errors = {}
for value in sys.argv[2:]:
    module, _, attr = value.partition(":")
    try:
        obj = importlib.import_module(module.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        if attr and not callable(obj):
            raise TypeError(f"{value} is a {type(obj).__name__}, not a callable builder")
    except BaseException as exc:
        errors[value] = f"{type(exc).__name__}: {first_line(exc)}"
print(json.dumps(errors))
"""


def distribution_for_package(package):
    """The installed distribution that provides the import package ``package``, or ``None``.

    A distribution whose ``kzoo.layers`` entry point names a module of the package comes first; otherwise the
    distribution whose files install the package's top level.
    """
    top = package.split(".")[0]
    for ep in importlib.metadata.entry_points(group=LAYER_GROUP):
        if ep.value.split(":")[0].strip().split(".")[0] == top and getattr(ep, "dist", None) is not None:
            return ep.dist.metadata["Name"]
    dists = importlib.metadata.packages_distributions().get(top, [])
    return dists[0] if dists else None


def layer_entry_points():
    """The ``kzoo.layers`` entry points that are in effect (none of a third party's when plugins are disabled)."""
    found = []
    for ep in importlib.metadata.entry_points(group=LAYER_GROUP):
        dist = getattr(ep, "dist", None)
        name = dist.metadata["Name"] if dist is not None else "unknown"
        if plugins_disabled() and _normalize(name) != BUILTIN_DISTRIBUTION:
            continue
        found.append((name, ep))
    return found


def import_plugin_layers():
    """Import every module registered under ``kzoo.layers`` so saved custom layers deserialise.

    Returns:
        ``{module: (distribution, error)}`` for modules that failed to import; they break only their own layers.
    """
    failures = {}
    for dist_name, ep in layer_entry_points():
        module = ep.value.split(":")[0].strip()
        try:
            importlib.import_module(module)
        except Exception as exc:  # a broken plugin must not stop loading other models
            failures[module] = (dist_name, f"{type(exc).__name__}: {first_line(exc)}")
    return failures


def explain_missing_layers(missing, failures):
    """Say which plugin each unregistered saved layer needs and what to do about it.

    Args:
        missing: registered names (``"package>Class"``) found in a saved model but not registered in Keras.
        failures: what :func:`import_plugin_layers` returned.

    Returns:
        One sentence per package, joined by spaces.
    """
    by_package = {}
    for name in sorted(missing):
        by_package.setdefault(name.split(">")[0], []).append(name)
    sentences = []
    for package, names in by_package.items():
        layers = ", ".join(repr(n) for n in names)
        dist = distribution_for_package(package)
        failed = [(d, e) for module, (d, e) in failures.items() if module.split(".")[0] == package.split(".")[0]]
        if dist is None:
            sentences.append(
                f"It needs the layer {layers} from the plugin package {package!r}, which is not installed: "
                f"install the plugin distribution that provides it (by convention "
                f"`pip install {package.split('.')[0].replace('_', '-')}`) and try again.")
        elif plugins_disabled():
            sentences.append(
                f"It needs the layer {layers} from the plugin distribution {dist!r}, which is installed but "
                f"plugins are disabled (KZOO_DISABLE_PLUGINS=1); unset it to load this file.")
        elif failed:
            sentences.append(
                f"It needs the layer {layers} from the plugin distribution {failed[0][0]!r}, whose layer module "
                f"failed to import ({failed[0][1]}).")
        else:
            sentences.append(
                f"It needs the layer {layers} from the plugin distribution {dist!r}, which is installed but "
                f"registers no module defining it in the {LAYER_GROUP!r} entry-point group.")
    return " ".join(sentences)


def check_imports(values, *, timeout=CHECK_TIMEOUT_S):
    """Import entry-point values (``"module"`` or ``"module:attr"``) in a fresh Python process.

    The child process gets this process's ``sys.path`` and environment (so ``KERAS_BACKEND``).

    Args:
        values: what to import; an ``attr`` must resolve to a callable.
        timeout: seconds before the child process is stopped and every value reported as failed.

    Returns:
        ``{value: "ErrorType: first line"}`` for each value that failed.
    """
    if not values:
        return {}
    try:
        done = subprocess.run([sys.executable, "-c", _CHECK_SCRIPT, json.dumps(sys.path), *values],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict.fromkeys(values, f"TimeoutExpired: importing took more than {timeout} s")
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        stderr = done.stderr.strip().splitlines()
        reason = stderr[-1] if stderr else f"the check process exited with status {done.returncode}"
        return dict.fromkeys(values, f"ImportError: {reason}")


def plugin_report(*, check=False):
    """One row per distribution providing models, datasets or layers, and every name clash.

    Args:
        check: also import each third-party distribution's modules, in a separate process per distribution;
            an import failure marks the distribution broken. Without it nothing is imported.

    Returns:
        ``{"plugins_disabled", "strict", "checked", "distributions": [...], "clashes": [...]}``; a row holds
        ``distribution``, ``version``, ``builtin``, ``models``, ``datasets``, ``layers``, ``status`` (``ok`` or
        ``broken``), ``error`` (the first error, or ``None``) and ``errors`` (every error, prefixed by the name).
    """
    report = {}

    def row_for(distribution, version):
        return report.setdefault(distribution, {
            "distribution": distribution, "version": version,
            "builtin": _normalize(distribution) == BUILTIN_DISTRIBUTION,
            "models": [], "datasets": [], "layers": [], "status": "ok", "error": None, "errors": [],
        })

    imports = {}
    for registry in (models, datasets):
        for entry in registry._index[1].values():  # every qualified entry
            row = row_for(entry.distribution, entry.version)
            row["models" if registry is models else "datasets"].append(entry.name)
            imports.setdefault(entry.distribution, {})[entry.value] = entry.name
            error = entry.info.get("error")
            if error:
                row["errors"].append(f"{entry.name}: {error}")
    for dist_name, ep in layer_entry_points():
        version = ep.dist.version if getattr(ep, "dist", None) is not None else "?"
        row = row_for(dist_name, version)
        row["layers"].append(ep.value)
        imports.setdefault(dist_name, {})[ep.value] = ep.value
    if check:
        for dist_name, values in imports.items():
            if report[dist_name]["builtin"]:
                continue
            for value, error in check_imports(list(values)).items():
                report[dist_name]["errors"].append(f"{values[value]}: {error}")
    for row in report.values():
        if row["errors"]:
            row["status"], row["error"] = "broken", row["errors"][0]
    clashes = []
    for registry in (models, datasets):
        for name, entries in registry.clashes.items():
            plain = registry._index[0].get(name)
            clashes.append({"name": name, "kind": registry.kind,
                            "distributions": [e.distribution for e in entries],
                            "qualified_names": [e.qualified_name for e in entries],
                            "plain_name_goes_to": plain.distribution if plain is not None else None})
    return {"plugins_disabled": plugins_disabled(), "strict": strict_plugins(), "checked": check,
            "distributions": sorted(report.values(), key=lambda r: (not r["builtin"], r["distribution"])),
            "clashes": clashes}
