"""Plugin distributions: what they provide, whether they work, and their serialisable layers.

A plugin is any installed distribution with entry points in ``kzoo.models`` or ``kzoo.datasets`` (and,
for custom layers saved inside ``.keras`` files, ``kzoo.layers``: ``name = "package.module"``). Listing reads
metadata only; nothing here imports a plugin's model module.
"""

import importlib
import importlib.metadata

from kzoo.registry import BUILTIN_DISTRIBUTION, datasets, models, plugins_disabled, strict_plugins

LAYER_GROUP = "kzoo.layers"


def distribution_for_package(package):
    """The distribution that installs the top-level import package ``package`` (or ``None``)."""
    top = package.split(".")[0]
    dists = importlib.metadata.packages_distributions().get(top, [])
    return dists[0] if dists else None


def import_plugin_layers():
    """Import every module registered under ``kzoo.layers`` so saved custom layers deserialise.

    Returns ``{module: error}`` for modules that failed to import (they break only their own layers).
    """
    failures = {}
    if plugins_disabled():
        return failures
    for ep in importlib.metadata.entry_points(group=LAYER_GROUP):
        try:
            importlib.import_module(ep.value.split(":")[0])
        except Exception as exc:  # a broken plugin must not stop loading other models
            failures[ep.value] = f"{type(exc).__name__}: {exc}"
    return failures


def plugin_report():
    """One row per distribution providing models or datasets: version, names, status and first error."""
    report = {}
    for registry in (models, datasets):
        for entry in registry._index[1].values():  # every qualified entry
            row = report.setdefault(entry.distribution, {
                "distribution": entry.distribution, "version": entry.version,
                "builtin": entry.distribution == BUILTIN_DISTRIBUTION, "models": [], "datasets": [],
                "status": "ok", "errors": [],
            })
            row["models" if registry is models else "datasets"].append(entry.name)
            error = entry.info.get("error")
            if error:
                row["status"] = "broken"
                row["errors"].append(f"{entry.name}: {error}")
    clashes = []
    for registry in (models, datasets):
        for name, entries in registry.clashes.items():
            clashes.append({"name": name, "kind": registry.kind,
                            "distributions": [e.distribution for e in entries],
                            "qualified_names": [e.qualified_name for e in entries]})
    return {"plugins_disabled": plugins_disabled(), "strict": strict_plugins(),
            "distributions": sorted(report.values(), key=lambda r: (not r["builtin"], r["distribution"])),
            "clashes": clashes}
