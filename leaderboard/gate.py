"""``triptych gate``: compare a candidate's aggregates with a baseline, in the spirit of ``dvc metrics diff``.

Rows are matched on ``GATE_KEYS`` (benchmark, split, benchmark variant, method, metric, metric variant,
metric version). Each metric's ``direction`` and ``gate_tolerance`` come from the registry (a rules file
may widen or narrow a tolerance, absolute or relative to the baseline value). The gate fails on:

* a regression beyond tolerance (worse in the metric's direction by more than the tolerance);
* a metric version change (the same row under another ``metric_version``: never compared silently);
* a data-manifest change (both sides record a manifest sha256 and they differ: refused, not compared);
* a changed sample set (``samples_changed``: another count, or other sample ids, behind the two values of
  a row: a mean over other samples is refused, not compared);
* a missing row (in the baseline, not in the candidate), or a metric the registry does not know.

A results folder is read under the one rule of ``triptych.results.select_runs`` (per request, the newest
complete run), and a run's rows must be unique per (run, sample, metric variant), or reading it fails.

Improvements (within or beyond tolerance) and rows only in the candidate ("new") pass.

A rule may also ask for significance (``significance: LEVEL``, the rule key of ``judge_significance``):
then a row is a regression only when the paired difference candidate - baseline, bootstrapped over the
benchmark's sampling unit (``triptych.stats``), is worse than the tolerance with probability above LEVEL;
a move beyond the tolerance that noise explains passes as ``within_noise``. Both sides must then be results
folders (per-sample rows), and every row shows the difference's interval and that probability.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd
import yaml

from triptych import schema
from triptych.errors import SpecError, TriptychError
from triptych.leaderboard.table import reproduced_rows
from triptych.registry import MetricSpec, registry
from triptych.results import SCHEMA_VERSION, json_safe, read_samples
from triptych.stats import IntervalSettings, SamplingUnit, paired_difference

GATE_KEYS = ["benchmark", "split", "benchmark_variant", "method", "metric", "metric_variant", "metric_version"]
AGGREGATE_COLUMNS = [*GATE_KEYS, "task", "unit", "value", "n", "samples_sha256", "sample_ids", "manifest_sha256",
                     "run_id"]
AGGREGATES_KIND = "triptych-aggregates"
REPORT_KIND = "triptych-gate-report"
FAILING = ("regression", "version_changed", "variant_changed", "data_changed", "samples_changed", "missing",
           "unknown_metric")
PASSING = ("improved", "within_tolerance", "within_noise", "unchanged", "new")


@dataclass(frozen=True)
class Tolerance:
    """How far a value may move in the worse direction: ``max(absolute, relative * |baseline|)``."""

    absolute: float = 0.0
    relative: float = 0.0
    significance: float | None = None  # judge_significance: P(worse than allowed) must exceed this to fail

    def allowed(self, baseline: float) -> float:
        rel = self.relative * abs(baseline) if math.isfinite(baseline) else 0.0
        return max(self.absolute, rel)

    def describe(self) -> str:
        parts = [f"±{self.absolute:g}"] if self.absolute or not self.relative else []
        if self.relative:
            parts.append(f"±{self.relative * 100:g}% of baseline")
        significance = f", fail if P(worse) > {self.significance:g}" if self.significance is not None else ""
        return " or ".join(parts) + significance


@dataclass
class GateRow:
    """One compared row: its key, both values, the verdict and why."""

    key: dict[str, Any]
    status: str
    baseline: float | None = None
    candidate: float | None = None
    delta: float | None = None
    allowed: float | None = None
    tolerance: str = ""
    direction: str = ""
    reason: str = ""
    baseline_version: int | None = None
    candidate_version: int | None = None
    interval: dict[str, Any] | None = None  # judge_significance: the paired difference's interval
    probability: float | None = None  # judge_significance: P(candidate worse than the baseline by > allowed)

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    @property
    def label(self) -> str:
        k = self.key
        return (f"{k['benchmark']}/{k['split']} ({k['benchmark_variant']}) {k['method']} "
                f"{k['metric']}:{k['metric_variant']} v{k['metric_version']}")


@dataclass
class GateResult:
    """All compared rows, failing ones first."""

    baseline: str
    candidate: str
    rows: list[GateRow] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(r.failed for r in self.rows)

    @property
    def failures(self) -> list[GateRow]:
        return [r for r in self.rows if r.failed]

    def counts(self) -> dict[str, int]:
        return {s: n for s in (*FAILING, *PASSING) if (n := sum(r.status == s for r in self.rows))}

    def to_json(self) -> dict[str, Any]:
        return json_safe({
            "kind": REPORT_KIND, "schema_version": SCHEMA_VERSION, "passed": self.passed,
            "baseline": self.baseline, "candidate": self.candidate, "counts": self.counts(),
            "rows": [{**asdict(r), "label": r.label, "failed": r.failed} for r in self.rows],
        })


# ---------------------------------------------------------------------------------------------- loading

def _finite_or_inf(value: Any, where: str) -> float:
    if isinstance(value, str) and value in ("inf", "-inf"):
        return float(value)
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise TriptychError(f"{where}: value {value!r} is not a number") from exc
    if math.isnan(out):
        raise TriptychError(f"{where}: NaN value", fix="a baseline holds measured numbers only")
    return out


def aggregates_json(rows: pd.DataFrame) -> dict[str, Any]:
    """Aggregates in the committed-baseline format (``kind: triptych-aggregates``)."""
    cols = [*GATE_KEYS, "task", "unit", "value", "n", "samples_sha256", "manifest_sha256", "run_id"]
    records = []
    for rec in rows.reindex(columns=cols).to_dict("records"):
        rec = {k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()}
        rec = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}
        records.append(rec)
    return json_safe({"kind": AGGREGATES_KIND, "schema_version": SCHEMA_VERSION, "rows": records})


def _from_json(path: Path) -> pd.DataFrame:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TriptychError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("kind") != AGGREGATES_KIND or not isinstance(doc.get("rows"), list):
        raise TriptychError(f"{path}: not a triptych aggregates file (expected kind {AGGREGATES_KIND!r} and rows)",
                            fix="write one with 'triptych gate ... --out DIR' (DIR/aggregates.json) or pass a "
                                "results folder")
    rows = []
    for i, rec in enumerate(doc["rows"]):
        where = f"{path}: rows[{i}]"
        missing = [k for k in (*GATE_KEYS, "value") if k not in rec]
        if missing:
            raise TriptychError(f"{where}: missing field(s) {', '.join(missing)}")
        rows.append({**rec, "metric_version": int(rec["metric_version"]),
                     "value": _finite_or_inf(rec["value"], where)})
    return pd.DataFrame(rows).reindex(columns=AGGREGATE_COLUMNS)


def load_aggregates(path: str | Path) -> pd.DataFrame:
    """Aggregates of a results folder (pooled means of its complete runs) or of an aggregates JSON file."""
    path = Path(path)
    if path.is_dir():
        frame = reproduced_rows(path).reindex(columns=AGGREGATE_COLUMNS)
    elif path.is_file():
        frame = _from_json(path)
    else:
        raise TriptychError(f"{path}: no such results folder or aggregates file",
                            fix="pass a results folder (RESULTS/<run_id>/...) or a committed aggregates JSON")
    frame["metric_version"] = frame["metric_version"].astype(int)
    frame[GATE_KEYS] = frame[GATE_KEYS].astype({k: str for k in GATE_KEYS if k != "metric_version"})
    duplicated = frame.duplicated(subset=GATE_KEYS, keep=False)
    if duplicated.any():
        first = frame[duplicated].iloc[0]
        runs = ", ".join(str(r) for r in frame[duplicated & (frame["metric"] == first["metric"])]["run_id"])
        raise TriptychError(f"{path}: several rows for {first['benchmark']}/{first['split']} {first['method']} "
                            f"{first['metric']}:{first['metric_variant']} (runs {runs})",
                            fix="keep one request per benchmark, method and variant in the folder (of several runs "
                                "of one request, the newest complete run counts: see 'triptych runs list')")
    return frame.reset_index(drop=True)


def _check_rule_name(name: Any, metrics: Mapping[str, MetricSpec], where: str) -> str:
    """A rule names a registered metric, or a metric and one of its variants (nearest names if not)."""
    metric, sep, variant = str(name).partition(":")
    fix = "write 'metric: {...}' or 'metric:variant: {...}' ('triptych list metrics' names both)"
    where = f"{where}: rule {str(name)!r}"
    schema.check_name(metric, metrics, "metric", where, fix)
    if sep:
        schema.check_name(variant, metrics[metric].variants, f"variant of {metric}", where, fix)
    return str(name)


def load_rules(path: str | Path | None, metrics: Mapping[str, MetricSpec] | None = None) -> dict[str, Tolerance]:
    """Tolerance overrides: ``{metric or metric:variant: {absolute: x, relative: y, significance: p}}`` (YAML);
    ``significance`` alone keeps the registry's tolerance. Each rule is checked against
    ``triptych.schema.RULE`` and its name against the registry's metrics and variants."""
    if path is None:
        return {}
    metrics = registry().metrics if metrics is None else metrics
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TriptychError(f"{path}: cannot read the gate rules ({exc})") from exc
    if not isinstance(doc, dict):
        raise TriptychError(f"{path}: expected a mapping 'metric[:variant]: {{absolute: x, relative: y}}'")
    rules = {}
    for name, rule in doc.items():
        where = f"{path}: rule {name!r}"
        rule = schema.RULE.check(rule, where)
        if not rule:
            raise SpecError(f"{where} sets nothing", fix="e.g. 'psnr: {absolute: 0.05}' or 'ssim:win65: {relative: 0.001}'")
        try:
            values = {k: float(v) for k, v in rule.items()}
        except (TypeError, ValueError):
            raise SpecError(f"{where}: tolerances must be numbers, not {rule!r}", fix="e.g. 'psnr: {absolute: 0.05}'") from None
        if any(v < 0 or math.isnan(v) for v in values.values()):
            raise TriptychError(f"{path}: rule {name!r}: tolerances must be >= 0")
        if "significance" in values and not 0 < values["significance"] < 1:
            raise TriptychError(f"{path}: rule {name!r}: significance {values['significance']:g} is not a probability "
                                "level in (0, 1)", fix="e.g. significance: 0.95")
        rules[_check_rule_name(name, metrics, str(path))] = _rule_tolerance(str(name), values)
    return rules


def _rule_tolerance(name: str, values: dict[str, float]) -> Tolerance:
    """A rule's tolerance; a rule that sets only ``significance`` keeps the metric's registry tolerance."""
    if set(values) == {"significance"}:
        metric = registry().metrics.get(name.partition(":")[0])
        return Tolerance(metric.gate_tolerance if metric else 0.0, significance=values["significance"])
    return Tolerance(**values)


# -------------------------------------------------------------------------------------------- comparing

def _tolerance(metric: MetricSpec, variant: str, rules: Mapping[str, Tolerance]) -> Tolerance:
    return rules.get(f"{metric.name}:{variant}") or rules.get(metric.name) or Tolerance(metric.gate_tolerance)


# Per-sample values of a (baseline row, candidate row) pair and the benchmark's sampling unit.
PairedSamples = Callable[[pd.Series, pd.Series], tuple[pd.Series, pd.Series, SamplingUnit]]


def judge_significance(row: GateRow, baseline: pd.Series, candidate: pd.Series, unit: SamplingUnit,
                       level: float, settings: IntervalSettings | None = None) -> GateRow:
    """The significance rule: a regression only when P(candidate - baseline is worse than the allowed move)
    over the bootstrap of the paired difference exceeds ``level``; a fixed-tolerance regression that noise
    explains becomes ``within_noise``. Without an interval (fewer than 2 units) the fixed decision stands."""
    from triptych.compare import check_same_samples

    check_same_samples(baseline, candidate, "baseline", "candidate", row.label)
    ids = sorted(baseline.index)
    diff = paired_difference(ids, baseline[ids].to_numpy(), candidate[ids].to_numpy(), unit,
                             settings or IntervalSettings())
    row.interval = diff.interval
    row.probability = diff.probability_worse(row.direction, row.allowed or 0.0)
    if row.probability is None:
        row.reason += f" (significance not assessed: {diff.interval.get('note')}; the fixed tolerance decides)"
        return row
    p = f"P(worse by > {row.allowed:.6g}) = {row.probability:.3g}"
    if row.probability > level:
        row.status = "regression"
        row.reason = f"worse by {abs(diff.difference):.6g} beyond the tolerance with {p} > {level:g}"
    elif row.status == "regression":
        row.status = "within_noise"
        row.reason = f"moved {diff.difference:+.6g}, but {p} <= {level:g}: not distinguishable from noise"
    else:
        row.reason += f"; {p} <= {level:g}"
    return row


def _judge(key: dict[str, Any], old: float, new: float, spec: MetricSpec, tol: Tolerance) -> GateRow:
    sign = 1.0 if spec.direction == "higher" else -1.0
    allowed = tol.allowed(old)
    row = GateRow(key, "unchanged", old, new, None, allowed, tol.describe(), spec.direction)
    if old == new:
        row.delta = 0.0
        return row
    delta = new - old
    row.delta = delta if math.isfinite(delta) else (math.inf if new > old else -math.inf)
    better = sign * row.delta  # > 0: better in the metric's direction
    word = "higher" if spec.direction == "higher" else "lower"
    if better < -allowed:
        row.status = "regression"
        row.reason = f"worse by {abs(row.delta):.6g} ({word} is better), beyond the tolerance {allowed:.6g}"
    elif better > allowed:
        row.status, row.reason = "improved", f"better by {abs(row.delta):.6g} ({word} is better)"
    else:
        row.status, row.reason = "within_tolerance", f"moved {row.delta:+.6g}, within ±{allowed:.6g}"
    return row


def compare(baseline: pd.DataFrame, candidate: pd.DataFrame, *, metrics: Mapping[str, MetricSpec] | None = None,
            rules: Mapping[str, Tolerance] | None = None, baseline_name: str = "baseline",
            candidate_name: str = "candidate", paired: PairedSamples | None = None) -> GateResult:
    """Judge every baseline row against the candidate; candidate-only rows are reported as new. A rule with
    ``significance`` needs ``paired`` (the rows' per-sample values: ``run_gate`` reads them from results folders)."""
    metrics = registry().metrics if metrics is None else metrics
    rules = rules or {}
    result = GateResult(baseline_name, candidate_name)
    loose = [k for k in GATE_KEYS if k != "metric_version"]
    cand_by_loose: dict[tuple, list[pd.Series]] = {}
    for _, c in candidate.iterrows():
        cand_by_loose.setdefault(tuple(c[k] for k in loose), []).append(c)
    matched: set[int] = set()
    for _, b in baseline.iterrows():
        key = {k: (int(b[k]) if k == "metric_version" else b[k]) for k in GATE_KEYS}
        spec = metrics.get(str(b["metric"]))
        same = cand_by_loose.get(tuple(b[k] for k in loose), [])
        exact = [c for c in same if int(c["metric_version"]) == int(b["metric_version"])]
        for c in same:
            matched.add(id(c))
        if spec is None:
            result.rows.append(GateRow(key, "unknown_metric", float(b["value"]), reason=f"metric {b['metric']!r} is "
                                       "not in the registry: its direction and tolerance are unknown"))
            continue
        if not same:
            other = _other_variants(candidate, b)
            if other:
                result.rows.append(GateRow(key, "variant_changed", float(b["value"]), direction=spec.direction,
                                           reason=f"the candidate scored this row under {', '.join(other)}: values of "
                                                  "different protocol variants are refused, not compared"))
            else:
                result.rows.append(GateRow(key, "missing", float(b["value"]), direction=spec.direction,
                                           reason="in the baseline, not in the candidate"))
            continue
        if not exact:
            new_versions = sorted({int(c["metric_version"]) for c in same})
            result.rows.append(GateRow(
                key, "version_changed", float(b["value"]), float(same[0]["value"]), direction=spec.direction,
                baseline_version=int(b["metric_version"]), candidate_version=new_versions[0],
                reason=f"metric version {int(b['metric_version'])} -> {', '.join(map(str, new_versions))}: "
                       "values of different versions are never compared; re-score the baseline with the new version"))
            continue
        c = exact[0]
        old_manifest, new_manifest = b.get("manifest_sha256"), c.get("manifest_sha256")
        if isinstance(old_manifest, str) and isinstance(new_manifest, str) and old_manifest and new_manifest \
                and old_manifest != new_manifest:
            result.rows.append(GateRow(key, "data_changed", float(b["value"]), float(c["value"]),
                                       direction=spec.direction,
                                       reason=f"data manifest sha256 {old_manifest[:12]} -> {new_manifest[:12]}: "
                                              "scores of different data are refused, not compared"))
            continue
        samples = sample_set_change(b, c)
        if samples:
            result.rows.append(GateRow(key, "samples_changed", float(b["value"]), float(c["value"]),
                                       direction=spec.direction, reason=samples))
            continue
        tol = _tolerance(spec, str(b["metric_variant"]), rules)
        row = _judge(key, float(b["value"]), float(c["value"]), spec, tol)
        if tol.significance is not None and spec.level != "set":
            if paired is None:
                raise TriptychError(f"{row.label}: the significance rule needs per-sample rows of both sides",
                                    fix="pass results folders as --baseline and --candidate (not aggregates JSON)")
            row = judge_significance(row, *paired(b, c), tol.significance)
        result.rows.append(row)
    for rows in cand_by_loose.values():
        for c in rows:
            if id(c) not in matched:
                key = {k: (int(c[k]) if k == "metric_version" else c[k]) for k in GATE_KEYS}
                spec = metrics.get(str(c["metric"]))
                result.rows.append(GateRow(key, "new", None, float(c["value"]),
                                           direction=spec.direction if spec else "",
                                           reason="in the candidate only (not gated)"))
    order = {s: i for i, s in enumerate((*FAILING, "improved", "new", "within_noise", "within_tolerance", "unchanged"))}
    result.rows.sort(key=lambda r: (order[r.status], r.label))
    return result


def _count(value: Any) -> int | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


def sample_set_change(b: pd.Series, c: pd.Series) -> str:
    """Why the baseline row ``b`` and the candidate row ``c`` average different samples ("" when they do
    not): another count, other ids (named when both sides carry them), or no count to compare."""
    n_b, n_c = _count(b.get("n")), _count(c.get("n"))
    if n_b is None or n_c is None:
        return (f"the {'baseline' if n_b is None else 'candidate'} records no sample count, so the sample sets "
                "cannot be compared; write the aggregates again with 'triptych gate ... --out DIR'")
    ids_b, ids_c = b.get("sample_ids"), c.get("sample_ids")
    if isinstance(ids_b, tuple) and isinstance(ids_c, tuple) and ids_b != ids_c:
        missing, extra = sorted(set(ids_b) - set(ids_c)), sorted(set(ids_c) - set(ids_b))
        named = "; ".join(f"{label} {len(ids)}: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}"
                          for label, ids in (("missing in the candidate", missing),
                                             ("only in the candidate", extra)) if ids)
        return f"the sample sets differ (n {n_b} -> {n_c}; {named or 'repeated sample ids'}): means over other " \
               "samples are refused, not compared"
    if n_b != n_c:
        return f"n {n_b} -> {n_c} samples: means over other samples are refused, not compared"
    sha_b, sha_c = b.get("samples_sha256"), c.get("samples_sha256")
    if isinstance(sha_b, str) and isinstance(sha_c, str) and sha_b != sha_c:
        return (f"the sample ids differ (n {n_b} on both sides, sample-set sha256 {sha_b[:12]} -> {sha_c[:12]}): "
                "means over other samples are refused, not compared")
    return ""


def _other_variants(candidate: pd.DataFrame, b: pd.Series) -> list[str]:
    """The candidate's variants of the baseline row's (benchmark, split, method, metric), if it has others."""
    same = candidate[(candidate["benchmark"] == b["benchmark"]) & (candidate["split"] == b["split"])
                     & (candidate["method"] == b["method"]) & (candidate["metric"] == b["metric"])]
    return sorted({f"benchmark variant {c['benchmark_variant']!r} / {c['metric']}:{c['metric_variant']}"
                   for _, c in same.iterrows()})


def results_pairs(baseline: Path, candidate: Path) -> PairedSamples | None:
    """Per-sample values of a baseline row and a candidate row, read from their runs (results folders only)."""
    if not (Path(baseline).is_dir() and Path(candidate).is_dir()):
        return None

    def values(results: Path, row: pd.Series) -> pd.Series:
        samples = read_samples(Path(results) / str(row["run_id"]))
        keep = ((samples.metric == row["metric"]) & (samples.metric_variant == row["metric_variant"])
                & (samples.metric_version == int(row["metric_version"])))
        return samples[keep].set_index("sample_id")["value"].astype(float)

    def pair(b: pd.Series, c: pd.Series) -> tuple[pd.Series, pd.Series, SamplingUnit]:
        from triptych.compare import sampling_unit
        from triptych.results import read_run

        return values(baseline, b), values(candidate, c), sampling_unit(read_run(Path(candidate) / str(c["run_id"])))

    return pair


def run_gate(baseline: str | Path, candidate: str | Path, rules: str | Path | None = None,
             metrics: Mapping[str, MetricSpec] | None = None) -> tuple[GateResult, pd.DataFrame]:
    """Load both sides and compare; returns the result and the candidate's aggregates."""
    tolerances = load_rules(rules, metrics)  # a bad rules file is refused before any results are read
    cand = load_aggregates(candidate)
    result = compare(load_aggregates(baseline), cand, metrics=metrics, rules=tolerances,
                     baseline_name=str(baseline), candidate_name=str(candidate),
                     paired=results_pairs(Path(baseline), Path(candidate)))
    return result, cand
