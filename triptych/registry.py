"""The registry: metrics, benchmarks and methods declared as data, loaded into typed specs.

Plugins extend it: an installed distribution that declares an entry point in the group
``triptych.methods`` (or ``triptych.metrics``, ``triptych.benchmarks``) pointing at a function returning
entries in the YAML schema (a mapping, or the path of a YAML file) adds them. Every entry is checked against
its declared schema (``triptych.schema``): an unknown key, or a metric or variant name that does not exist,
is refused with the nearest valid name. A plugin that fails to load, breaks the schema or clashes with a
registered name is recorded in ``Registry.broken``: a command that uses a name it declares gets its error,
every other command works (``triptych list`` names it).

Every entry lives in a YAML file inside the package that implements it (``metrics/specs/*.yaml``,
``benchmarks/specs/*.yaml``, ``baselines/specs/*.yaml``); each task keeps its own file, so tasks never
edit one shared list. An entry points at its code as ``module:callable`` and is imported only when it
is used (pyiqa imports every architecture at start-up; we do not); a metric variant or method entry declares
the keyword inputs its callable takes (``inputs``, ``triptych.inputs``), checked when the callable is loaded.
The weights registry (``triptych.weights``) reads its YAML documents with the same parser (``parse_entries``).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from dataclasses import dataclass, field
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import yaml

from triptych import schema
from triptych.errors import SpecError, TriptychError, UnknownNameError
from triptych.inputs import KIND_DATA, METHOD_INPUTS, METRIC_INPUTS, Inputs, check_signature, parse_inputs
from triptych.schema import nearest
from triptych.stats import SamplingUnit
from triptych.task_list import TASKS

Kind = Literal["metrics", "benchmarks", "methods"]

# Which package holds the YAML files of each kind.
_SPEC_PACKAGES: dict[str, str] = {
    "metrics": "triptych.metrics",
    "benchmarks": "triptych.benchmarks",
    "methods": "triptych.baselines",
}
LEVELS = ("frame", "pair", "video", "triplet", "image", "set")
# A benchmark's ``pooling``: per metric level, an aggregate reported beside the pooled mean (triptych.scoring):
# per_video, each video's mean (videos named by the first part of the sample id) and the mean over videos.
POOLINGS = ("per_video",)
# Data files beside the specs that are not registry entries (read by their own loaders).
NOT_SPECS = {"published_methods.yaml"}  # triptych.published


def load_callable(ref: str) -> Callable[..., Any]:
    """Import ``module:attribute`` (the registry's pointer format)."""
    module_name, _, attr = ref.partition(":")
    if not attr:
        raise TriptychError(f"registry pointer {ref!r} is not of the form 'module:callable'")
    try:
        module = importlib.import_module(module_name)
    except TriptychError:
        raise
    except Exception as exc:  # a missing module, or a plugin module that fails while it is imported
        raise TriptychError(f"registry pointer {ref!r}: cannot import {module_name} ({type(exc).__name__}: {exc})",
                            fix="fix the pointer, or install (or fix) the package that provides it") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise TriptychError(f"registry pointer {ref!r}: {module_name} has no attribute {attr!r}") from exc


@dataclass(frozen=True)
class VariantSpec:
    """One named, versioned formula of a metric (a metric variant in ``docs/conventions.md``)."""

    name: str
    version: int
    callable: str
    description: str
    protocol: str
    params: dict[str, Any] = field(default_factory=dict)
    weights: tuple[str, ...] = ()  # weights-registry names (triptych/data/weights.yaml) this formula loads
    inputs: Inputs = Inputs()  # the keyword inputs its callable takes (triptych.inputs)
    data: tuple[str, ...] | None = None  # the data its metric kind passes first (triptych.inputs.KIND_DATA)
    where: str = ""  # the spec file and entry that declare it

    def load(self) -> Callable[..., Any]:
        """The callable, checked against the declared ``inputs`` (``triptych.inputs.check_signature``)."""
        fn = load_callable(self.callable)
        check_signature(fn, self.inputs, self.data, tuple(self.params), self.where, self.callable)
        return fn


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
                f"metric {self.name!r} has no variant {name!r}{nearest(name, self.variants)}",
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
    # What the protocol draws independently (video, identity, triplet): what intervals resample (triptych.stats).
    sampling_unit: SamplingUnit = SamplingUnit()
    # metric level -> one of POOLINGS: the aggregates reported beside the pooled mean (``{frame: per_video}``)
    pooling: dict[str, str] = field(default_factory=dict)

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
                f"benchmark {self.name!r} has no variant {name!r}{nearest(name, self.variants)}",
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
    inputs: Inputs = Inputs()  # the keyword inputs its factory takes besides params (triptych.inputs)

    def load(self) -> Callable[..., Any]:
        """The factory, checked against the declared ``inputs`` (``triptych.inputs.check_signature``)."""
        fn = load_callable(self.callable)
        check_signature(fn, self.inputs, (), tuple(self.params), self.source, self.callable)
        return fn


def _number(e: dict[str, Any], key: str, where: str, kind: type = int) -> Any:
    """``e[key]`` as an int (or float); a value of another type is a ``SpecError`` naming the key."""
    value = e[key]
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise SpecError(f"{where}: {key} must be {'a number' if kind is float else 'an integer'}, not {value!r}")
    return kind(value)


def _mapping(e: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """An optional mapping field (``params``), ``{}`` when absent or null."""
    value = e.get(key) or {}
    if not isinstance(value, dict):
        raise SpecError(f"{where}: {key} must be a mapping of name -> value, not {value!r}")
    return dict(value)


def _names(e: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    """An optional list of names (``weights``), ``()`` when absent or null."""
    value = e.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where}: {key} must be a list of names, not {value!r}")
    return tuple(value)


def _tasks(values: Any, where: str) -> tuple[str, ...]:
    """A list of task names, each one of ``TASKS`` (the nearest if not)."""
    if not isinstance(values, list):
        raise SpecError(f"{where}: expected a list of tasks among {', '.join(TASKS)}, not {values!r}")
    for task in values:
        schema.check_name(str(task), TASKS, "task", where, fix=f"use {', '.join(TASKS)}")
    return tuple(values)


def _task(value: Any, where: str) -> str:
    """One task name (the nearest if it is not one of ``TASKS``)."""
    schema.check_name(str(value), TASKS, "task", where, fix=f"use one of {', '.join(TASKS)}")
    return str(value)


def _parse_metric(name: str, e: dict[str, Any], where: str) -> MetricSpec:
    e = schema.METRIC.check(e, where)
    if e["level"] not in LEVELS:
        raise SpecError(f"{where}: level {e['level']!r} is not one of {', '.join(LEVELS)}"
                        f"{nearest(e['level'], LEVELS)}")
    if e["direction"] not in ("higher", "lower"):
        raise SpecError(f"{where}: direction must be 'higher' or 'lower'")
    if not isinstance(e["variants"], dict) or not e["variants"]:
        raise SpecError(f"{where}: variants must be a mapping of name -> variant")
    variants = {}
    for vname, v in e["variants"].items():
        vwhere = f"{where} variant {vname!r}"
        v = schema.METRIC_VARIANT.check(v, vwhere)
        variants[vname] = VariantSpec(vname, _number(v, "version", vwhere), v["callable"], v["description"],
                                      v["protocol"], _mapping(v, "params", vwhere), _names(v, "weights", vwhere),
                                      parse_inputs(v.get("inputs"), METRIC_INPUTS, vwhere), KIND_DATA.get(e["kind"]),
                                      vwhere)
    default = e.get("default_variant")
    if default is not None and default not in variants:
        raise SpecError(f"{where}: default_variant {default!r} is not among its variants{nearest(default, variants)}")
    return MetricSpec(name, e["description"], e["kind"], e["level"], e["direction"], e.get("unit", ""),
                      _tasks(e["tasks"], f"{where} tasks"), variants, default,
                      _number(e, "gate_tolerance", where, float), where, value_range=str(e.get("range", "")),
                      paper=str(e.get("paper", "")))


def _parse_benchmark(name: str, e: dict[str, Any], where: str) -> BenchmarkSpec:
    e = schema.BENCHMARK.check(e, where)
    if not isinstance(e["metrics"], list):
        raise SpecError(f"{where}: metrics must be a list of {{metric: NAME, variant: VARIANT}}")
    metrics = tuple((m["metric"], m["variant"]) for i, m in enumerate(e["metrics"])
                    for m in [schema.BENCHMARK_METRIC.check(m, f"{where} metrics[{i}]")])
    if not isinstance(e["variants"], dict) or not e["variants"]:
        raise SpecError(f"{where}: variants must be a mapping of name -> {{key: value}}")
    variants = {}
    for vname, v in e["variants"].items():
        if v is not None and not isinstance(v, dict):
            raise SpecError(f"{where} variant {vname!r}: expected a mapping of key -> value, not {v!r}")
        variants[vname] = dict(v or {})
    default = e.get("default_variant")
    if default is not None and default not in variants:
        raise SpecError(f"{where}: default_variant {default!r} is not among its variants{nearest(default, variants)}")
    return BenchmarkSpec(name, e["split"], _task(e["task"], where), _number(e, "version", where),
                         e["description"], e["loader"],
                         variants, default, metrics, _mapping(e, "params", where), where,
                         sampling_unit=SamplingUnit.from_spec(e.get("sampling_unit"), f"{where}: sampling_unit"),
                         pooling=_pooling(e.get("pooling"), where))


def _pooling(value: Any, where: str) -> dict[str, str]:
    """A benchmark's ``pooling``: a mapping of metric level -> one of ``POOLINGS`` (``{}`` when absent)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"{where}: pooling must be a mapping of metric level -> pooling, not {value!r}",
                        fix="e.g. 'pooling: {frame: per_video}' (each video's mean and the mean over videos)")
    for level, pooling in value.items():
        schema.check_name(str(level), LEVELS, "metric level in pooling", where, fix=f"use one of {', '.join(LEVELS)}")
        schema.check_name(str(pooling), POOLINGS, f"pooling of {level} metrics", where,
                          fix=f"use one of {', '.join(POOLINGS)}")
    return {str(level): str(pooling) for level, pooling in value.items()}


def _parse_method(name: str, e: dict[str, Any], where: str) -> MethodSpec:
    e = schema.METHOD.check(e, where)
    return MethodSpec(name, _task(e["task"], where), _number(e, "version", where), e["description"], e["callable"],
                      _names(e, "weights", where), _mapping(e, "params", where), where,
                      inputs=parse_inputs(e.get("inputs"), METHOD_INPUTS, where))


def _check_benchmark_metrics(spec: BenchmarkSpec, metrics: dict[str, MetricSpec]) -> None:
    """A benchmark's (metric, variant) pairs name registered metrics and variants (nearest names if not)."""
    for metric, variant in spec.metrics:
        schema.check_name(metric, metrics, "metric", spec.source, fix="run 'triptych list metrics' for the names")
        schema.check_name(variant, metrics[metric].variants, f"variant of metric {metric!r}", spec.source,
                          fix=f"the variants of {metric}: {', '.join(metrics[metric].variants)}")


_PARSERS = {"metrics": _parse_metric, "benchmarks": _parse_benchmark, "methods": _parse_method}


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that failed to load or whose entries do not follow the schema: named, never skipped."""

    kind: str
    where: str  # "plugin DIST VERSION (entry point NAME = VALUE)"
    error: TriptychError
    names: tuple[str, ...]  # the entry names it declared, when it got as far as declaring any

    def refusal(self, name: str) -> TriptychError:
        fix = self.error.fix or f"fix or uninstall the plugin ({self.where})"
        return TriptychError(f"{self.kind[:-1]} {name!r} comes from a broken plugin: {self.error.message}", fix=fix)


@dataclass(frozen=True)
class Registry:
    """The entries by kind; ``broken`` holds the plugins that could not be registered. A command that uses a
    name a broken plugin declares gets that plugin's error; every other command works."""

    metrics: dict[str, MetricSpec]
    benchmarks: dict[str, BenchmarkSpec]
    methods: dict[str, MethodSpec]
    broken: tuple[BrokenPlugin, ...] = ()

    def get(self, kind: Kind, name: str) -> Any:
        table: dict[str, Any] = getattr(self, kind)
        broken = [b for b in self.broken if b.kind == kind]
        for plugin in broken:
            if name in plugin.names:
                raise plugin.refusal(name)
        if name not in table:
            undeclared = [b for b in broken if not b.names]
            also = "".join(f"; {b.where} failed to load and may declare it: {b.error.message}" for b in undeclared)
            raise UnknownNameError(
                f"unknown {kind[:-1]} {name!r}{nearest(name, table)}{also}",
                fix=f"run 'triptych list {kind}' to see the {len(table)} known names")
        return table[name]

    def metric(self, name: str) -> MetricSpec:
        return self.get("metrics", name)

    def benchmark(self, name: str) -> BenchmarkSpec:
        return self.get("benchmarks", name)

    def method(self, name: str) -> MethodSpec:
        return self.get("methods", name)


def read_document(text: str, where: str) -> Any:
    """One registry YAML document, ``{}`` when empty; text that is not YAML is a ``SpecError`` naming ``where``."""
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: not valid YAML ({exc})", fix="fix the YAML syntax at the position named") from exc


def parse_entries(what: str, doc: Any, where_file: str, parse: Callable[[str, Any, str], Any],
                  taken: Mapping[str, str]) -> dict[str, Any]:
    """The entries of one registry document (a mapping of name -> entry), each made by ``parse(name, entry,
    where)``, which checks it against its schema; a name in ``taken`` (name -> where it is declared) is
    refused, naming both places. Every registry reads its documents through this: metrics, benchmarks,
    methods (YAML files and plugins) and weights (``triptych.weights``)."""
    if not isinstance(doc, dict):
        raise SpecError(f"{where_file}: expected a mapping of name -> entry, not {type(doc).__name__}")
    entries: dict[str, Any] = {}
    for name, entry in doc.items():
        where = f"{where_file}: {name}"
        if name in taken:
            raise SpecError(f"{where}: the {what} name {name!r} is already declared in {taken[name]}",
                            fix="rename one of them; a plugin cannot replace a registered name")
        entries[name] = parse(name, entry, where)
    return entries


def _parse_all(kind: str, doc: Any, where_file: str, plugin: tuple[str, str] | None,
               taken: dict[str, Any]) -> dict[str, Any]:
    """The entries of one YAML document (or plugin mapping) of ``kind``, recorded with their ``plugin``."""
    declared = {name: spec.source for name, spec in taken.items()}
    return {name: dataclasses.replace(spec, plugin=plugin)
            for name, spec in parse_entries(kind[:-1], doc, where_file, _PARSERS[kind], declared).items()}


def _plugin_entries(kind: str, point: Any, taken: dict[str, Any]) -> tuple[dict[str, Any], BrokenPlugin | None]:
    """One entry point's entries, or the reason it is broken (its failure never breaks the others)."""
    dist = (point.dist.name, point.dist.version) if point.dist is not None else (point.value, "unknown")
    where = f"plugin {dist[0]} {dist[1]} (entry point {point.name} = {point.value})"
    provided: Any = None
    try:
        try:
            provided = point.load()()
            if isinstance(provided, (str, Path)):
                provided = yaml.safe_load(Path(provided).read_text(encoding="utf-8"))
        except Exception as exc:  # a broken plugin is named, never silently skipped
            raise TriptychError(f"{where}: failed to load ({exc})", fix=f"fix or uninstall {dist[0]}") from exc
        return _parse_all(kind, provided, where, dist, taken), None
    except TriptychError as exc:
        names = tuple(str(n) for n in provided) if isinstance(provided, dict) else ()
        return {}, BrokenPlugin(kind, where, exc, names)


def _load_kind(kind: str) -> tuple[dict[str, Any], list[BrokenPlugin]]:
    """The packaged YAML files, then every plugin registered under the entry-point group ``triptych.<kind>``."""
    entries: dict[str, Any] = {}
    spec_dir = resources.files(_SPEC_PACKAGES[kind]) / "specs"
    for item in sorted(spec_dir.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml") and item.name not in NOT_SPECS:
            where = f"{_SPEC_PACKAGES[kind]}/specs/{item.name}"
            entries.update(_parse_all(kind, read_document(item.read_text(encoding="utf-8"), where), where, None,
                                      entries))
    broken = []
    for point in sorted(entry_points(group=f"triptych.{kind}"), key=lambda p: p.name):
        added, failure = _plugin_entries(kind, point, entries)
        entries.update(added)
        broken += [failure] if failure else []
    return entries, broken


@functools.lru_cache(maxsize=1)
def registry() -> Registry:
    """The process-wide registry: the packaged YAML files plus installed plugins, read once. A packaged entry
    that breaks its schema is an error; a plugin that does is recorded in ``broken``."""
    loaded = {kind: _load_kind(kind) for kind in _SPEC_PACKAGES}
    tables = {kind: entries for kind, (entries, _) in loaded.items()}
    broken = [b for _, failures in loaded.values() for b in failures]
    for name, spec in list(tables["benchmarks"].items()):
        try:
            _check_benchmark_metrics(spec, tables["metrics"])
        except TriptychError as exc:
            if spec.plugin is None:
                raise
            del tables["benchmarks"][name]
            broken.append(BrokenPlugin("benchmarks", spec.source, exc, (name,)))
    return Registry(**tables, broken=tuple(broken))
