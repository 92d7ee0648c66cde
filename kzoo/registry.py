"""One registry for built-in and third-party models (and datasets): Python entry points.

kzoo registers its own models in the ``kzoo.models`` entry-point group of its ``pyproject.toml``, exactly as a
plugin distribution does. An entry point names a builder ``module:function``.

Listing and describing never import a model's module (so never keras, torch or tensorflow): the metadata is
read from the module's source. Each model module holds two module-level literals, ``MODEL_CARD`` (what the
family shares: family, task, paper, options, recipe) and ``SPECS`` (one row per variant), and they are parsed
with :mod:`ast`, not executed. The module is imported when its model is built.

Name resolution rules:

* one distribution registers a name: that name works as is;
* kzoo and a plugin register the same name: the built-in keeps the plain name, and both stay reachable as
  ``<distribution>:<name>``; the clash is reported by ``kzoo plugins``;
* two plugins register the same name: the plain name is an error that names both distributions.

A plugin is *broken* when its metadata cannot be read or a package its module imports at module level is
missing (both found without importing it); its models stay listed with ``status: broken`` and using one raises
:class:`~kzoo.errors.PluginError`. ``KZOO_STRICT_PLUGINS=1`` makes any broken plugin fatal for listing and
building; ``KZOO_DISABLE_PLUGINS=1`` ignores every third-party entry point.

The registry knows names, metadata and options only: building a model (weights, backend) is
:func:`kzoo.factory.create_model`, which is built on it.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import functools
import importlib.metadata
import os
import sys
from dataclasses import dataclass, field

from kzoo.errors import OptionError, PluginError, UnknownNameError, first_line

BUILTIN_DISTRIBUTION = "kzoo"
MODEL_GROUP = "kzoo.models"
DATASET_GROUP = "kzoo.datasets"


def plugins_disabled():
    """``KZOO_DISABLE_PLUGINS=1``: third-party entry points are ignored; built-ins keep working."""
    return os.environ.get("KZOO_DISABLE_PLUGINS", "").lower() in ("1", "true", "yes")


def strict_plugins():
    """``KZOO_STRICT_PLUGINS=1``: any broken third-party plugin makes listing and building fail."""
    return os.environ.get("KZOO_STRICT_PLUGINS", "").lower() in ("1", "true", "yes")


def _normalize(dist_name):
    return dist_name.lower().replace("_", "-").replace(".", "-")


# --------------------------------------------------------------------------------------------------------------
# Reading MODEL_CARD / SPECS without importing the module
# --------------------------------------------------------------------------------------------------------------


def _find_spec(fullname, search_path):
    """The spec of ``fullname`` from an already imported module or the ``sys.meta_path`` finders (no import)."""
    loaded = sys.modules.get(fullname)
    spec = getattr(loaded, "__spec__", None) if loaded is not None else None
    if spec is not None:
        return spec
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            spec = find_spec(fullname, search_path)
        except Exception:  # a third-party finder that cannot answer for this name
            spec = None
        if spec is not None:
            return spec
    return None


def _find_source(module_name):
    """The file that defines ``module_name``, located through ``sys.meta_path`` without executing anything."""
    search_path = None
    spec = None
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):
        spec = _find_spec(".".join(parts[:depth]), search_path)
        if spec is None:
            return None
        search_path = spec.submodule_search_locations
    return spec.origin if spec is not None and spec.has_location else None


@functools.lru_cache(maxsize=None)
def _parse_module(module_name):
    """``(origin, ast.Module)`` of a module's source, found and parsed without executing it."""
    origin = _find_source(module_name)
    if origin is None or not origin.endswith(".py"):
        raise ModuleNotFoundError(f"No module named {module_name!r}")
    with open(origin, encoding="utf-8") as handle:
        return origin, ast.parse(handle.read(), filename=origin)


@functools.lru_cache(maxsize=None)
def missing_imports(module_name):
    """Top-level packages that ``module_name`` imports unconditionally but that cannot be found.

    Only module-level ``import x`` / ``from x import y`` statements count (not those inside ``try``, ``if``
    or functions); the packages are looked up by the import system's finders, never imported.
    """
    _, tree = _parse_module(module_name)
    wanted = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            wanted.extend(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            wanted.append(node.module.split(".")[0])
    return tuple(dict.fromkeys(name for name in wanted if _find_spec(name, None) is None))


@functools.lru_cache(maxsize=None)
def read_module_metadata(module_name):
    """Return ``(MODEL_CARD, SPECS)`` of a module, read from its source as literals."""
    origin, tree = _parse_module(module_name)
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in ("MODEL_CARD", "SPECS"):
                try:
                    found[target.id] = ast.literal_eval(value)
                except ValueError as exc:
                    raise ValueError(
                        f"{target.id} in {origin} must be a plain literal (dicts, lists, tuples, strings, "
                        f"numbers) so it can be read without importing the module: {exc}"
                    ) from None
    return found.get("MODEL_CARD", {}), found.get("SPECS", {})


def merge_card(card, row):
    """A variant's metadata: the family card, overridden by the variant's row (options/recipe merged)."""
    info = {k: v for k, v in card.items()}
    for key, value in row.items():
        if key in ("options", "recipe") and isinstance(value, dict):
            info[key] = {**card.get(key, {}), **value}
        else:
            info[key] = value
    for name, schema in info.get("options", {}).items():
        schema.setdefault("type", _infer_type(schema.get("default")))
        schema.setdefault("help", "")
    return info


def _infer_type(default):
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, (list, tuple)):
        return "floats" if any(isinstance(v, float) for v in default) else "ints"
    return "str"


# --------------------------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------------------------

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def coerce_option(model, key, schema, value):
    """Check one option value against its schema and return it in its declared type."""
    kind = schema.get("type", "str")
    received = f"Received: {key}={value!r}"
    try:
        if value is None:
            coerced = None
        elif kind == "bool":
            if isinstance(value, str):
                if value.lower() not in _TRUE | _FALSE:
                    raise ValueError
                coerced = value.lower() in _TRUE
            elif isinstance(value, (bool, int)) and value in (0, 1):
                coerced = bool(value)
            else:
                raise ValueError
        elif kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            coerced = int(value)
        elif kind == "float":
            if isinstance(value, bool):
                raise ValueError
            coerced = float(value)
        elif kind in ("ints", "floats"):
            cast = int if kind == "ints" else float
            items = value.split(",") if isinstance(value, str) else list(value)
            coerced = tuple(cast(str(v).strip()) if isinstance(v, str) else cast(v) for v in items if str(v).strip())
            if not coerced:
                raise ValueError
        else:
            coerced = str(value)
    except (TypeError, ValueError):
        expected = {"ints": "comma-separated integers (e.g. 256,128)", "floats": "comma-separated numbers",
                    "bool": "true or false"}.get(kind, f"a value of type {kind}")
        raise OptionError(f"Option {key!r} of {model} expects {expected}. {received}.") from None
    choices = schema.get("choices")
    if choices is not None and coerced is not None and coerced not in choices:
        raise OptionError(
            f"Option {key!r} of {model} must be one of {', '.join(map(str, choices))}. {received}."
        )
    low, high = schema.get("min"), schema.get("max")
    checked = coerced if isinstance(coerced, tuple) else (coerced,)
    for item in checked:
        if item is None or isinstance(item, (str, bool)):
            continue
        if (low is not None and item < low) or (high is not None and item > high):
            bounds = f"between {low} and {high}" if low is not None and high is not None else (
                f">= {low}" if low is not None else f"<= {high}")
            raise OptionError(f"Option {key!r} of {model} must be {bounds}. {received}.")
    return coerced


def validate_options(model, schemas, options):
    """Check ``options`` against a model's option schemas; unknown names get a "did you mean"."""
    clean = {}
    for key, value in options.items():
        if key not in schemas:
            hint = _suggest(key, schemas)
            valid = ", ".join(sorted(schemas)) or "none"
            raise OptionError(f"Model {model} has no option {key!r}.{hint} Its options: {valid}.")
        if value is None:  # timm habit: None means "keep the default"
            continue
        clean[key] = coerce_option(model, key, schemas[key], value)
    return clean


def _suggest(name, candidates):
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(close)}?" if close else ""


# --------------------------------------------------------------------------------------------------------------
# Entries and the registry
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One registered name: where it comes from and, lazily, what its source says about it."""

    name: str
    value: str
    distribution: str
    version: str
    group: str
    entry_point: importlib.metadata.EntryPoint = field(repr=False)

    @property
    def qualified_name(self):
        return f"{self.distribution}:{self.name}"

    @property
    def builtin(self):
        return _normalize(self.distribution) == BUILTIN_DISTRIBUTION

    @property
    def module(self):
        return self.value.split(":")[0].strip()

    @property
    def attr(self):
        return self.value.split(":")[1].strip() if ":" in self.value else ""

    @functools.cached_property
    def metadata(self):
        """``(info, error)``: the merged card and spec row, and the first line of why the entry is broken.

        Broken means, without importing anything: the module's source cannot be found or parsed, its
        ``MODEL_CARD``/``SPECS`` are not plain literals, or a package it imports at module level is missing.
        """
        try:
            card, specs = read_module_metadata(self.module)
            missing = missing_imports(self.module)
        except Exception as exc:  # a broken plugin must not break listing
            return self._base_info(), f"{type(exc).__name__}: {first_line(exc)}"
        row = specs.get(self.name) or specs.get(self.attr) or {}
        info = merge_card(card, row)
        info.update(self._base_info())
        error = f"ModuleNotFoundError: No module named {missing[0]!r} (imported by {self.module})" if missing else None
        return info, error

    def _base_info(self):
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "entry_point": self.value,
            "builtin": self.builtin,
        }

    @property
    def info(self):
        info, error = self.metadata
        return {**info, "status": "broken" if error else "ok", "error": error}

    def load(self):
        """Import the module and return the builder; a failure names the distribution that broke."""
        try:
            return self.entry_point.load()
        except Exception as exc:
            raise PluginError(
                f"{self.name!r} could not be loaded: distribution {self.distribution} {self.version} failed to "
                f"import {self.value} ({type(exc).__name__}: {first_line(exc)})."
            ) from exc


class Registry:
    """Entry points of one group, resolved once per process."""

    def __init__(self, group, kind):
        self.group = group
        self.kind = kind  # "model" or "dataset", used in messages

    @functools.cached_property
    def _index(self):
        by_name = {}
        for ep in importlib.metadata.entry_points(group=self.group):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else "unknown"
            version = dist.version if dist is not None else "?"
            entry = Entry(ep.name, ep.value, dist_name, version, self.group, ep)
            if plugins_disabled() and not entry.builtin:
                continue
            by_name.setdefault(ep.name, []).append(entry)
        plain, qualified, clashes = {}, {}, {}
        for name, entries in by_name.items():
            for entry in entries:
                qualified[entry.qualified_name] = entry
            if len(entries) == 1:
                plain[name] = entries[0]
                continue
            clashes[name] = entries
            builtins = [e for e in entries if e.builtin]
            if builtins:
                plain[name] = builtins[0]
        return plain, qualified, clashes

    def reset(self):
        """Forget what was discovered (tests install throwaway distributions)."""
        self.__dict__.pop("_index", None)
        for cached in (_parse_module, missing_imports, read_module_metadata):
            cached.cache_clear()

    @property
    def clashes(self):
        """``{name: [entries]}`` for every name registered by more than one distribution."""
        return self._index[2]

    def entries(self):
        """Every entry under its display name (plain where unambiguous, else qualified), sorted."""
        plain, qualified, clashes = self._index
        shown = dict(plain)
        for name, entries in clashes.items():
            for entry in entries:
                if plain.get(name) is not entry:
                    shown[entry.qualified_name] = entry
        return dict(sorted(shown.items()))

    def all_names(self):
        plain, qualified, _ = self._index
        return sorted(set(plain) | set(qualified))

    def resolve(self, name):
        plain, qualified, clashes = self._index
        if name in plain:
            return plain[name]
        if name in qualified:
            return qualified[name]
        if name in clashes:
            dists = " and ".join(e.distribution for e in clashes[name])
            options = ", ".join(e.qualified_name for e in clashes[name])
            raise UnknownNameError(
                f"{self.kind.capitalize()} name {name!r} is registered by both {dists}. "
                f"Use a qualified name: {options}."
            )
        hint = _suggest(name, self.all_names())
        raise UnknownNameError(
            f"Unknown {self.kind} {name!r}.{hint} Run `kzoo list` to see every {self.kind}."
            if self.kind == "model" else f"Unknown {self.kind} {name!r}.{hint}"
        )

    def names(self, pattern=None, **filters):
        """Display names matching a shell wildcard and exact metadata filters (e.g. ``task="image"``)."""
        result = []
        for name, entry in self.entries().items():
            if pattern and not (fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(entry.name, pattern)):
                continue
            info = entry.info
            if any(value is not None and info.get(key) != value for key, value in filters.items()):
                continue
            result.append(name)
        return result

    def info(self, name):
        entry = self.resolve(name)
        info = entry.info
        if name != entry.name:
            info["qualified_name"] = name
        return info


models = Registry(MODEL_GROUP, "model")
datasets = Registry(DATASET_GROUP, "dataset")


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


def broken_plugins():
    """``{distribution: first error}`` of every third-party distribution whose metadata cannot be read."""
    broken = {}
    for registry in (models, datasets):
        for entry in registry._index[1].values():
            error = entry.info["error"]
            if error and not entry.builtin:
                broken.setdefault(entry.distribution, f"{entry.name}: {error}")
    return broken


def require_healthy_plugins(strict=False):
    """In strict mode (``strict`` or ``KZOO_STRICT_PLUGINS=1``), raise if any third-party plugin is broken.

    Raises:
        PluginError: naming every broken distribution and its first error.
    """
    if not (strict or strict_plugins()):
        return
    broken = broken_plugins()
    if broken:
        details = "; ".join(f"{dist} ({error})" for dist, error in sorted(broken.items()))
        raise PluginError(f"Strict plugin mode (--strict or KZOO_STRICT_PLUGINS=1): broken plugin "
                          f"distributions: {details}.")


def list_models(pattern=None, *, task=None, family=None, strict=False):
    """Names of the registered models, optionally filtered by a shell wildcard (``"resnet*"``), task or family.

    Reads metadata only: no model module, keras or framework is imported. A broken plugin's models are listed
    (their info says ``status: broken``) unless ``strict`` or ``KZOO_STRICT_PLUGINS=1``, which raise
    :class:`PluginError` instead.
    """
    require_healthy_plugins(strict)
    return models.names(pattern, task=task, family=family)


def model_info(name):
    """Everything the registry knows about a model: family, task, defaults, paper, options, recipe, origin."""
    return models.info(name)


def resolve_model_options(name, options):
    """Validate user options for ``name`` and return ``(entry, info, clean_options)``."""
    require_healthy_plugins()
    entry = models.resolve(name)
    info = entry.info
    if info["status"] == "broken":
        raise PluginError(
            f"Model {name!r} is unavailable: distribution {entry.distribution} {entry.version} is broken "
            f"({info['error']})."
        )
    return entry, info, validate_options(name, info.get("options", {}), options)
