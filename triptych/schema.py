"""The declared schema of every spec triptych reads: one place, one check, one kind of error.

A ``Schema`` names the keys a mapping may hold (required and optional). ``Schema.check`` refuses a key that
is not declared with the nearest declared name (difflib), and names a missing required key, so a typo is
never read as "not given" (docs/bad_inputs.md, section "Specs, plugins and weights"). Everything that reads
a spec checks it here:

- the registry (``triptych.registry``): metric, metric-variant, benchmark, benchmark-metric and method
  entries, from the packaged YAML files and from plugins;
- the benchmark loaders: each declares with ``@loader_schema(...)`` the keys it reads from its variants
  (and which of them it hands to the method's factory as invocation parameters) and from ``params``;
- the methods (``triptych.methods``): a registry entry's ``params`` and the ``--param`` overrides of
  invocation keys against the factory's signature;
- the gate (``triptych.leaderboard.gate``): its rules file, ``RULE`` below (extend it with ``extended``);
- the weights registry (``triptych.weights``): its entries, ``WEIGHTS`` below.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, TypeVar

from triptych.errors import SpecError, UnknownNameError

F = TypeVar("F", bound=Callable[..., Any])


def nearest(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known names, or ``""``."""
    matches = difflib.get_close_matches(str(name), [str(k) for k in known], n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(m) for m in matches)}?)" if matches else ""


def check_name(name: str, known: Iterable[str], what: str, where: str, fix: str) -> None:
    """Refuse ``name`` unless it is among ``known``: an ``UnknownNameError`` with the nearest names."""
    known = list(known)
    if name not in known:
        raise UnknownNameError(f"{where}: unknown {what} {name!r}{nearest(name, known)}", fix=fix)


@dataclass(frozen=True)
class Schema:
    """The keys of one kind of mapping: ``what`` names it in messages ("benchmark entry", "gate rule")."""

    what: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return self.required + self.optional

    def extended(self, *optional: str) -> Schema:
        """The same schema with more optional keys (a new gate-rule test, a new entry field)."""
        return Schema(self.what, self.required, self.optional + tuple(k for k in optional if k not in self.keys))

    def check(self, mapping: Any, where: str) -> dict[str, Any]:
        """``mapping`` as a dict, if it is a mapping with declared keys only and every required key."""
        if not isinstance(mapping, Mapping):
            raise SpecError(f"{where}: a {self.what} must be a mapping of {', '.join(self.keys) or 'no keys'}, "
                            f"not {type(mapping).__name__} {mapping!r}",
                            fix=f"write it as {{{', '.join(f'{k}: ...' for k in self.required or self.keys[:1])}}}")
        unknown = [k for k in mapping if k not in self.keys]
        if unknown:
            described = "; ".join(f"{k!r}{nearest(k, self.keys)}" for k in unknown)
            raise SpecError(f"{where}: unknown key(s) in the {self.what}: {described}",
                            fix=f"the keys of a {self.what}: {', '.join(self.keys) or 'none'}"
                                + (f" (required: {', '.join(self.required)})" if self.required else ""))
        missing = [k for k in self.required if k not in mapping]
        if missing:
            raise SpecError(f"{where}: the {self.what} lacks required key(s) {', '.join(missing)}",
                            fix=f"add {', '.join(missing)}")
        return dict(mapping)


# --- benchmark variants -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoaderSchema:
    """What a benchmark loader reads: the keys of its variants and of its entry's ``params``; the
    ``invocation`` variant keys are also handed to the method's factory (AMT's ``pad_divisor`` /
    ``scale_factor``: how the reference script invokes the model)."""

    variant: Schema
    params: Schema
    invocation: tuple[str, ...] = ()


def loader_schema(variant: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
                  params: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
                  invocation: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Declare, on a benchmark loader, the (required, optional) keys it reads from a variant and from the
    entry's ``params`` (``loader.loader_schema``)."""
    def declare(loader: F) -> F:
        declared = LoaderSchema(Schema("benchmark variant", *variant), Schema("benchmark params", *params), invocation)
        loader.loader_schema = declared  # type: ignore[attr-defined]
        return loader
    return declare


def declared_schema(loader: Callable[..., Any], pointer: str, where: str) -> LoaderSchema:
    declared = getattr(loader, "loader_schema", None)
    if not isinstance(declared, LoaderSchema):
        raise SpecError(f"{where}: its loader {pointer} declares no schema",
                        fix="decorate the loader with @triptych.schema.loader_schema(variant=..., params=...)")
    return declared


def typed_override(key: str, raw: str, default: Any, where: str) -> Any:
    """A ``--param KEY=RAW`` value in the type of the variant's own value: where that is a number, a list
    (YAML ``[432, 240]``) or a mapping, it must stay one; where it is null, a number or null is read as such
    and anything else stays text; where it is text, it stays text."""
    if isinstance(default, str):
        return raw
    import yaml

    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    if default is None:  # a number, null, or text (a folder) as given
        return value if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)) else raw
    if not _same_type(value, default):
        raise SpecError(f"{where}: --param {key}={raw!r} is not {_describe(default)}",
                        fix=f"e.g. --param {key}={_yaml_text(default)}")
    return value


def _same_type(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, list):
        return (isinstance(value, list) and len(value) == len(default)
                and all(_same_type(v, d) for v, d in zip(value, default)))
    return isinstance(value, type(default))


def _describe(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    return f"a list of {len(default)} values" if isinstance(default, list) else f"a {type(default).__name__}"


def _yaml_text(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


# --- method factories ---------------------------------------------------------------------------------------

def factory_parameters(factory: Callable[..., Any]) -> tuple[str, ...] | None:
    """The keyword parameters a method factory takes (None: it takes ``**kwargs``, so any key)."""
    parameters = inspect.signature(factory).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return tuple(p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                          inspect.Parameter.KEYWORD_ONLY) and p.name != "context")


def check_factory_keys(keys: Iterable[str], factory: Callable[..., Any], what: str, where: str, fix: str) -> None:
    """Refuse keys that the factory does not take, each with the nearest parameter it does take."""
    accepted = factory_parameters(factory)
    if accepted is None:
        return
    unknown = [k for k in keys if k not in accepted]
    if unknown:
        described = "; ".join(f"{k!r}{nearest(k, accepted)}" for k in unknown)
        raise SpecError(f"{where}: {what} {described} not taken by the factory (it takes: "
                        f"{', '.join(accepted) or 'nothing'})", fix=fix)


# --- declarations ---------------------------------------------------------------------------------------------

METRIC = Schema("metric entry", ("description", "kind", "level", "direction", "tasks", "variants", "gate_tolerance"),
                ("unit", "default_variant", "range", "paper"))
METRIC_VARIANT = Schema("metric variant", ("version", "callable", "description", "protocol"),
                        ("params", "weights", "inputs"))
BENCHMARK = Schema("benchmark entry", ("split", "task", "version", "description", "loader", "variants", "metrics"),
                   ("default_variant", "params", "sampling_unit", "pooling"))
BENCHMARK_METRIC = Schema("benchmark metric", ("metric", "variant"))
METHOD = Schema("method entry", ("task", "version", "description", "callable"), ("weights", "params", "inputs"))
RULE = Schema("gate rule", (), ("absolute", "relative", "significance"))  # significance: gate.judge_significance
WEIGHTS = Schema("weights entry", ("description", "urls", "filename", "size", "licence", "sha256", "sha256_source",
                                   "format", "container_key", "source"),
                 ("sha256_prefix", "sha256_prefix_source", "archive_member", "archive_sha256", "archive_sha256_source",
                  "package", "package_version", "path", "architecture"))
ARCHITECTURE = Schema("weights architecture", ("callable",), ("args",))
