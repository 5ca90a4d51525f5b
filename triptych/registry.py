"""The registry: metrics, benchmarks and methods declared as data, loaded into typed specs.

Plugins extend it: an installed distribution that declares an entry point in the group
``triptych.methods`` (or ``triptych.metrics``, ``triptych.benchmarks``) pointing at a function returning
entries in the YAML schema (a mapping, or the path of a YAML file) adds them; a name clash is refused.

Every entry lives in a YAML file inside the package that implements it (``metrics/specs/*.yaml``,
``benchmarks/specs/*.yaml``, ``baselines/specs/*.yaml``); each task keeps its own file, so tasks never
edit one shared list. An entry points at its code as ``module:callable`` and is imported only when it
is used (pyiqa imports every architecture at start-up; we do not).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
from dataclasses import dataclass, field
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from triptych.errors import TriptychError, UnknownNameError

Kind = Literal["metrics", "benchmarks", "methods"]

# Which package holds the YAML files of each kind.
_SPEC_PACKAGES: dict[str, str] = {
    "metrics": "triptych.metrics",
    "benchmarks": "triptych.benchmarks",
    "methods": "triptych.baselines",
}
LEVELS = ("frame", "pair", "video", "triplet", "image", "set")
TASKS = ("video_inpainting", "frame_interpolation", "personalization")
# Data files beside the specs that are not registry entries (read by their own loaders).
NOT_SPECS = {"published_methods.yaml"}  # triptych.published


def load_callable(ref: str) -> Callable[..., Any]:
    """Import ``module:attribute`` (the registry's pointer format)."""
    module_name, _, attr = ref.partition(":")
    if not attr:
        raise TriptychError(f"registry pointer {ref!r} is not of the form 'module:callable'")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise TriptychError(f"registry pointer {ref!r}: {module_name} has no attribute {attr!r}") from exc


@dataclass(frozen=True)
class VariantSpec:
    """One named, versioned formula of a metric (a metric variant in ``conventions.md``)."""

    name: str
    version: int
    callable: str
    description: str
    protocol: str
    params: dict[str, Any] = field(default_factory=dict)
    weights: tuple[str, ...] = ()  # weights-registry names (triptych/data/weights.yaml) this formula loads

    def load(self) -> Callable[..., Any]:
        return load_callable(self.callable)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    description: str
    kind: str
    level: str
    direction: Literal["higher", "lower"]
    unit: str
    tasks: tuple[str, ...]
    variants: dict[str, VariantSpec]
    default_variant: str | None
    needs: tuple[str, ...]
    gate_tolerance: float
    source: str
    plugin: tuple[str, str] | None = None  # (distribution, version) of the package that registered it
    value_range: str = ""  # optional YAML `range`: the values the metric can take, e.g. "[0, inf)"
    paper: str = ""  # optional YAML `paper`: the publication that defines the metric

    def variant(self, name: str | None) -> VariantSpec:
        """Resolve a variant; a metric with several variants and no default never guesses."""
        if name is None:
            if self.default_variant is not None:
                return self.variants[self.default_variant]
            if len(self.variants) == 1:
                return next(iter(self.variants.values()))
            choices = "\n".join(
                f"    --variant {v.name:<10} {v.description} [{v.protocol}]" for v in self.variants.values()
            )
            raise TriptychError(
                f"metric {self.name!r} has {len(self.variants)} variants and no default, because the "
                f"published protocols disagree and each gives different numbers:\n{choices}",
                fix=f"choose one explicitly, e.g. --variant {next(iter(self.variants))}",
            )
        if name not in self.variants:
            raise UnknownNameError(
                f"metric {self.name!r} has no variant {name!r}{_close(name, self.variants)}",
                fix=f"use one of: {', '.join(self.variants)}",
            )
        return self.variants[name]


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    split: str
    task: str
    version: int
    description: str
    loader: str
    variants: dict[str, dict[str, Any]]
    default_variant: str | None
    metrics: tuple[tuple[str, str], ...]  # (metric, metric variant) pairs, each named explicitly
    params: dict[str, Any]
    source: str
    plugin: tuple[str, str] | None = None

    @property
    def benchmark(self) -> str:
        """The results' ``benchmark`` column: the name less its ``/<split>`` (``snu-film/easy`` -> ``snu-film``)."""
        return self.name.removesuffix(f"/{self.split}")

    def variant(self, name: str | None) -> tuple[str, dict[str, Any]]:
        if name is None:
            if self.default_variant is None:
                raise TriptychError(
                    f"benchmark {self.name!r} has variants {', '.join(self.variants)} and no default",
                    fix="pass --benchmark-variant NAME",
                )
            name = self.default_variant
        if name not in self.variants:
            raise UnknownNameError(
                f"benchmark {self.name!r} has no variant {name!r}{_close(name, self.variants)}",
                fix=f"use one of: {', '.join(self.variants)}",
            )
        return name, self.variants[name]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    task: str
    version: int
    description: str
    callable: str
    weights: tuple[str, ...]
    params: dict[str, Any]
    source: str
    plugin: tuple[str, str] | None = None

    def load(self) -> Callable[..., Any]:
        return load_callable(self.callable)


def _close(name: str, known: Any) -> str:
    matches = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(m) for m in matches)}?)" if matches else ""


def _require(entry: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in entry]
    if missing:
        raise TriptychError(f"{where}: missing required field(s) {', '.join(missing)}")


def _check_keys(entry: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise TriptychError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _parse_metric(name: str, e: dict[str, Any], where: str) -> MetricSpec:
    allowed = {"description", "kind", "level", "direction", "unit", "tasks", "variants", "default_variant",
               "needs", "gate_tolerance", "range", "paper"}
    _check_keys(e, allowed, where)
    _require(e, ("description", "kind", "level", "direction", "tasks", "variants", "gate_tolerance"), where)
    if e["level"] not in LEVELS:
        raise TriptychError(f"{where}: level {e['level']!r} is not one of {', '.join(LEVELS)}")
    if e["direction"] not in ("higher", "lower"):
        raise TriptychError(f"{where}: direction must be 'higher' or 'lower'")
    variants = {}
    for vname, v in e["variants"].items():
        vwhere = f"{where} variant {vname!r}"
        _check_keys(v, {"version", "callable", "description", "protocol", "params", "weights"}, vwhere)
        _require(v, ("version", "callable", "description", "protocol"), vwhere)
        variants[vname] = VariantSpec(vname, int(v["version"]), v["callable"], v["description"],
                                      v["protocol"], dict(v.get("params") or {}), tuple(v.get("weights") or ()))
    default = e.get("default_variant")
    if default is not None and default not in variants:
        raise TriptychError(f"{where}: default_variant {default!r} is not among its variants")
    return MetricSpec(name, e["description"], e["kind"], e["level"], e["direction"], e.get("unit", ""),
                      tuple(e["tasks"]), variants, default, tuple(e.get("needs") or ()),
                      float(e["gate_tolerance"]), where, value_range=str(e.get("range", "")),
                      paper=str(e.get("paper", "")))


def _parse_benchmark(name: str, e: dict[str, Any], where: str) -> BenchmarkSpec:
    allowed = {"split", "task", "version", "description", "loader", "variants", "default_variant", "metrics",
               "params"}
    _check_keys(e, allowed, where)
    _require(e, ("split", "task", "version", "description", "loader", "variants", "metrics"), where)
    metrics = tuple((m["metric"], m["variant"]) for m in e["metrics"])
    return BenchmarkSpec(name, e["split"], e["task"], int(e["version"]), e["description"], e["loader"],
                         {k: dict(v or {}) for k, v in e["variants"].items()}, e.get("default_variant"),
                         metrics, dict(e.get("params") or {}), where)


def _parse_method(name: str, e: dict[str, Any], where: str) -> MethodSpec:
    _check_keys(e, {"task", "version", "description", "callable", "weights", "params"}, where)
    _require(e, ("task", "version", "description", "callable"), where)
    return MethodSpec(name, e["task"], int(e["version"]), e["description"], e["callable"],
                      tuple(e.get("weights") or ()), dict(e.get("params") or {}), where)


_PARSERS = {"metrics": _parse_metric, "benchmarks": _parse_benchmark, "methods": _parse_method}


@dataclass(frozen=True)
class Registry:
    metrics: dict[str, MetricSpec]
    benchmarks: dict[str, BenchmarkSpec]
    methods: dict[str, MethodSpec]

    def get(self, kind: Kind, name: str) -> Any:
        table: dict[str, Any] = getattr(self, kind)
        if name not in table:
            raise UnknownNameError(
                f"unknown {kind[:-1]} {name!r}{_close(name, table)}",
                fix=f"run 'triptych list {kind}' to see the {len(table)} known names",
            )
        return table[name]

    def metric(self, name: str) -> MetricSpec:
        return self.get("metrics", name)

    def benchmark(self, name: str) -> BenchmarkSpec:
        return self.get("benchmarks", name)

    def method(self, name: str) -> MethodSpec:
        return self.get("methods", name)


def _add(entries: dict[str, Any], kind: str, doc: Any, where_file: str, plugin: tuple[str, str] | None) -> None:
    if not isinstance(doc, dict):
        raise TriptychError(f"{where_file}: expected a mapping of name -> entry")
    for name, entry in doc.items():
        where = f"{where_file}: {name}"
        if name in entries:
            raise TriptychError(f"{where}: the {kind[:-1]} name {name!r} is already declared in {entries[name].source}",
                                fix="rename one of them; a plugin cannot replace a registered name")
        entries[name] = dataclasses.replace(_PARSERS[kind](name, entry, where), plugin=plugin)


def _load_kind(kind: str) -> dict[str, Any]:
    """The packaged YAML files, then every plugin registered under the entry-point group ``triptych.<kind>``."""
    entries: dict[str, Any] = {}
    spec_dir = resources.files(_SPEC_PACKAGES[kind]) / "specs"
    for item in sorted(spec_dir.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml") and item.name not in NOT_SPECS:
            _add(entries, kind, yaml.safe_load(item.read_text(encoding="utf-8")) or {},
                 f"{_SPEC_PACKAGES[kind]}/specs/{item.name}", None)
    for point in sorted(entry_points(group=f"triptych.{kind}"), key=lambda p: p.name):
        dist = (point.dist.name, point.dist.version) if point.dist is not None else (point.value, "unknown")
        where = f"plugin {dist[0]} {dist[1]} (entry point {point.name} = {point.value})"
        try:
            provided = point.load()()
        except Exception as exc:  # a broken plugin is named, never silently skipped
            raise TriptychError(f"{where}: failed to load ({exc})", fix=f"fix or uninstall {dist[0]}") from exc
        if isinstance(provided, (str, Path)):
            provided = yaml.safe_load(Path(provided).read_text(encoding="utf-8"))
        _add(entries, kind, provided, where, dist)
    return entries


@functools.lru_cache(maxsize=1)
def registry() -> Registry:
    """The process-wide registry: the packaged YAML files plus installed plugins, read once."""
    return Registry(**{kind: _load_kind(kind) for kind in _SPEC_PACKAGES})
