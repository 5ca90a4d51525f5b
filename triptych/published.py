"""Method identity for pairing: which published row a reproduced run may stand beside.

``baselines/specs/published_methods.yaml`` maps a registry method to the published method label, the
weights-registry entries that are the published checkpoint(s), and the thesis tables it may pair with
(each with the benchmark variant of that table's protocol). ``run_pairing`` applies the rule to one run's
JSON (README "Pairing rule"): a run pairs only when

- its data is the full split (a subset run never pairs);
- its method is in the mapping (a prediction folder or another method has no published identity);
- for every mapped weights entry, the run recorded a file whose sha256 equals the entry's pin (the
  registry's sha256, or for an unpinned entry the sha256 recorded on first use); user weights, rule
  weights and unrecorded files are refused;

and ``table_reason`` adds, per published row, that the row's table is one the method may pair with and
that the run's benchmark variant is that table's protocol. Anything else is shown unpaired with the reason.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping

import yaml

from triptych.errors import TriptychError

_WHERE = "triptych/baselines/specs/published_methods.yaml"
_KEYS = {"label", "weights", "tables", "note"}


@dataclass(frozen=True)
class PublishedMethod:
    """One entry: registry ``method`` -> published ``label``, its checkpoint(s) and its tables."""

    method: str
    label: str
    weights: tuple[str, ...]
    tables: dict[str, str]  # thesis table -> benchmark variant of its published protocol
    note: str = ""


@dataclass(frozen=True)
class Pairing:
    """What a run may pair with: ``label`` and ``tables`` when eligible, else ``reason`` says why not."""

    label: str | None
    tables: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    @property
    def eligible(self) -> bool:
        return self.label is not None


def parse_published(doc: Any, where: str = _WHERE) -> dict[str, PublishedMethod]:
    """The mapping's entries, checked: every field known, ``label`` text, ``weights`` a non-empty list,
    ``tables`` a non-empty table -> variant mapping."""
    if not isinstance(doc, dict):
        raise TriptychError(f"{where}: expected a mapping of registry method -> entry")
    out = {}
    for method, entry in doc.items():
        at = f"{where}: {method}"
        if not isinstance(entry, dict):
            raise TriptychError(f"{at}: expected a mapping with label, weights, tables")
        unknown = sorted(set(entry) - _KEYS)
        missing = sorted({"label", "weights", "tables"} - set(entry))
        if unknown or missing:
            raise TriptychError(f"{at}: unknown field(s) {unknown} / missing field(s) {missing}",
                                fix=f"fields: {', '.join(sorted(_KEYS))}")
        weights, tables = entry["weights"], entry["tables"]
        if not isinstance(weights, list) or not weights or not all(isinstance(w, str) for w in weights):
            raise TriptychError(f"{at}: weights must be a non-empty list of weights-registry names")
        if not isinstance(tables, dict) or not tables:
            raise TriptychError(f"{at}: tables must map a thesis table to its benchmark variant")
        out[str(method)] = PublishedMethod(str(method), str(entry["label"]), tuple(weights),
                                           {str(t): str(v) for t, v in tables.items()}, str(entry.get("note", "")))
    return out


@functools.lru_cache(maxsize=1)
def published_methods() -> dict[str, PublishedMethod]:
    """The packaged mapping, read once."""
    text = (resources.files("triptych.baselines") / "specs" / "published_methods.yaml").read_text(encoding="utf-8")
    return parse_published(yaml.safe_load(text))


def _pin(name: str) -> tuple[str | None, str]:
    """(sha256 of the published checkpoint, where it comes from) for a weights-registry entry."""
    from triptych.weights import expected_sha256, get_spec

    return expected_sha256(get_spec(name))


def _subset(run: Mapping[str, Any]) -> dict[str, Any] | None:
    return (run.get("data") or {}).get("subset")


def subset_label(run: Mapping[str, Any]) -> str:
    """``"6/3782"`` for a subset run, ``""`` for a full split."""
    subset = _subset(run)
    return f"{subset['count']}/{subset.get('of') or '?'}" if subset else ""


def run_pairing(run: Mapping[str, Any], mapping: Mapping[str, PublishedMethod] | None = None) -> Pairing:
    """Whether a run (its ``run.json``) may pair with published rows, and with which label and tables."""
    mapping = published_methods() if mapping is None else mapping
    method = str(run.get("method") or "")
    subset = subset_label(run)
    if subset:
        return Pairing(None, reason=f"subset {subset} of split {run.get('split')!r}: only a full split pairs")
    if run.get("pred_dir"):
        return Pairing(None, reason="scored from a prediction folder: no method or weights identity")
    entry = mapping.get(method)
    if entry is None:
        return Pairing(None, reason=f"method {method!r} has no published counterpart "
                                    "(baselines/specs/published_methods.yaml)")
    recorded = [w for w in run.get("weights") or [] if isinstance(w, dict)]
    for name in entry.weights:
        expected, _ = _pin(name)
        if expected is None:
            return Pairing(None, reason=f"weights {name!r} are unpinned and no sha256 was ever recorded, so the "
                                        "published checkpoint cannot be identified")
        if not any(w.get("sha256") == expected for w in recorded):
            user = [w for w in recorded if w.get("user_supplied") or name in (w.get("replaces") or ())]
            what = (f"user weights (sha256 {str(user[0].get('sha256'))[:12]})" if user
                    else "no file with that sha256 was recorded")
            return Pairing(None, reason=f"{what}: not the published checkpoint {name!r} "
                                        f"(sha256 {expected[:12]})")
    return Pairing(entry.label, dict(entry.tables))


def table_reason(pairing: Pairing, table: str, benchmark_variant: str) -> str:
    """``""`` when an eligible run may pair with a published row of ``table``, else why not."""
    if not pairing.eligible:
        return pairing.reason
    if table not in pairing.tables:
        return (f"{pairing.label} of this checkpoint pairs with table(s) {', '.join(pairing.tables)}, "
                f"not {table}")
    if pairing.tables[table] != benchmark_variant:
        return (f"benchmark variant {benchmark_variant!r}: table {table} was measured with "
                f"{pairing.tables[table]!r}")
    return ""
