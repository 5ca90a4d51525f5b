"""The leaderboard site's data: reported rows merged with reproduced ones, provenance and per-sample rows.

Everything the pages show comes from here, which reads only ``leaderboard.table`` / ``leaderboard.reported``
and the runs' ``samples.parquet`` / ``run.json``; templates format numbers, they never hold any.

A reproduced row and a reported row are *paired* when they share (benchmark, split, metric, metric
variant) and the pairing rule (``triptych.published``, README "Pairing rule") accepts them: the run's
method maps to the reported row's method label with the published checkpoint's sha256, the reported row's
table is one the method may pair with, measured with the run's benchmark variant, and the run scored the
full split. The pair gets the difference ``reproduced - reported`` and a flag saying whether it is
within the metric's ``gate_tolerance`` (registry); an unpaired reproduced row says why in ``pairing``. Reported rows without a metric variant are efficiency
figures (runtime, FLOPs, parameters) and go to the task pages, not to the benchmark tables.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from triptych.leaderboard.table import ablation_rows, leaderboard_rows, with_rank_intervals
from triptych.published import table_reason
from triptych.registry import registry
from triptych.task_list import TASK_TITLES, TASKS
from triptych.results import current_runs, read_samples

PAIR_KEYS = ["benchmark", "split", "metric", "metric_variant"]  # then the pairing rule (triptych.published)
# Columns of a benchmark table, in order (also the CSV / JSON downloads).
TABLE_COLUMNS = ["task", "benchmark", "split", "method", "method_version", "metric", "metric_variant", "benchmark_variant",
                 "metric_version", "unit", "direction", "reported", "reproduced", "ci_low", "ci_high", "ci_level",
                 "ci_unit", "ci_units", "rank", "n", "difference", "tolerance", "within_tolerance", "reported_table",
                 "published_method", "subset", "pairing", "note", "run_id"]
# Runtime figures are shown in ms/frame whatever unit the table printed them in.
_TIME_TO_MS = {"ms/frame": 1.0, "s/frame": 1000.0}


def slug(text: str) -> str:
    """A file-name-safe form of a benchmark name: ``snu-film`` -> ``snu-film``, ``a/b c`` -> ``a-b-c``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _num(value: Any) -> float | None:
    """A float, or None for a missing value (NaN / None)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


@dataclass
class BenchmarkPage:
    """One benchmark page: its merged table, its runs and its per-sample rows."""

    task: str
    benchmark: str
    page: str
    table: pd.DataFrame
    samples: pd.DataFrame
    run_ids: list[str]

    @property
    def splits(self) -> list[str]:
        return sorted(set(self.table["split"]))


@dataclass
class SiteData:
    """Everything one build shows."""

    results: Path
    rows: pd.DataFrame
    runs: list[dict[str, Any]]
    benchmarks: list[BenchmarkPage] = field(default_factory=list)
    efficiency: pd.DataFrame = field(default_factory=pd.DataFrame)
    efficiency_figures: pd.DataFrame = field(default_factory=pd.DataFrame)
    ablations: pd.DataFrame = field(default_factory=pd.DataFrame)  # published only, never paired

    def tasks(self) -> list[str]:
        present = ({b.task for b in self.benchmarks} | set(self.efficiency_figures.get("task", []))
                   | set(self.ablations.get("task", [])))
        return [t for t in TASKS if t in present]

    def for_task(self, task: str) -> list[BenchmarkPage]:
        return [b for b in self.benchmarks if b.task == task]

    def all_tables(self) -> pd.DataFrame:
        frames = [b.table for b in self.benchmarks]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TABLE_COLUMNS)


def _metric_info(metric: str) -> tuple[str | None, float | None]:
    spec = registry().metrics.get(metric)
    return (spec.direction, spec.gate_tolerance) if spec is not None else (None, None)


def pair_with(r: pd.Series, reported: pd.DataFrame) -> tuple[int | None, str]:
    """(index of the reported row a reproduced row pairs with, or None; why not, or ``""``)."""
    match = reported
    for key in PAIR_KEYS:
        match = match[match[key].astype(str) == str(r[key])]
    pairing = r["pairing"]
    if not pairing.eligible:
        return None, pairing.reason
    match = match[match["method"] == pairing.label]
    if match.empty:
        return None, (f"no published {pairing.label} row of {r['benchmark']}/{r['split']} {r['metric']}:"
                      f"{r['metric_variant'] or '-'}")
    reasons = []
    for index, rep in match.iterrows():
        reason = table_reason(pairing, str(rep["table"]), str(r["benchmark_variant"]))
        if not reason:
            return int(index), ""
        reasons.append(reason)
    return None, reasons[0]


def merge_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Reported and reproduced rows of one benchmark as one table, paired by ``pair_with``.

    Each reproduced row (one per run and metric variant) takes the reported row it pairs with; reported
    rows that pair with nothing stay as rows of their own. Difference and flag exist only for pairs.
    """
    reported = rows[rows["source"] == "reported"]
    reproduced = rows[rows["source"] == "reproduced"]
    out: list[dict[str, Any]] = []
    used: set[int] = set()
    for _, r in reproduced.iterrows():
        index, reason = pair_with(r, reported)
        if index is not None:
            used.add(index)
        out.append(_table_row(r, reported.loc[index] if index is not None else None, reason))
    for index, rep in reported.iterrows():
        if int(index) not in used:
            out.append(_table_row(None, rep))
    return pd.DataFrame(out, columns=TABLE_COLUMNS)


def _table_row(repro: pd.Series | None, rep: pd.Series | None, reason: str = "") -> dict[str, Any]:
    base = repro if repro is not None else rep
    assert base is not None
    direction, tolerance = _metric_info(str(base["metric"]))
    reported = _num(rep["value"]) if rep is not None else None
    reproduced = _num(repro["value"]) if repro is not None else None
    difference = within = None
    if reported is not None and reproduced is not None:
        difference = reproduced - reported if not (math.isinf(reproduced) and reproduced == reported) else 0.0
        within = tolerance is not None and abs(difference) <= tolerance
    return {
        "task": base["task"], "benchmark": base["benchmark"], "split": str(base["split"]), "method": base["method"],
        "method_version": str(repro.get("method_version") or "") if repro is not None else "",
        "metric": base["metric"], "metric_variant": str(base["metric_variant"] or ""),
        "benchmark_variant": str(repro["benchmark_variant"]) if repro is not None else "",
        "metric_version": int(repro["metric_version"]) if repro is not None else None,
        "unit": str(base.get("unit") or ""), "direction": direction, "reported": reported, "reproduced": reproduced,
        **_interval_fields(repro),
        "n": int(repro["n"]) if repro is not None else None, "difference": difference, "tolerance": tolerance,
        "within_tolerance": within, "reported_table": str(rep["table"]) if rep is not None else "",
        "published_method": str(rep["method"]) if rep is not None else "",
        "subset": str(repro["subset"]) if repro is not None else "", "pairing": reason,
        "note": str(rep.get("note") or "") if rep is not None else "",
        "run_id": str(repro["run_id"]) if repro is not None else "",
    }


def _interval_fields(repro: pd.Series | None) -> dict[str, Any]:
    """A reproduced row's bootstrap interval (run.json) and rank range; empty for a reported row."""
    if repro is None:
        return {"ci_low": None, "ci_high": None, "ci_level": None, "ci_unit": "", "ci_units": None, "rank": ""}
    units = _num(repro.get("ci_units"))
    return {"ci_low": _num(repro.get("ci_low")), "ci_high": _num(repro.get("ci_high")),
            "ci_level": _num(repro.get("ci_level")), "ci_unit": str(repro.get("ci_unit") or ""),
            "ci_units": int(units) if units is not None else None, "rank": str(repro.get("rank") or "")}


def _sort_table(table: pd.DataFrame) -> pd.DataFrame:
    """Split, metric, then the best value first (the metric's direction; reproduced before reported)."""
    best = table["reproduced"].where(table["reproduced"].notna(), table["reported"]).astype(float)
    sign = table["direction"].map({"lower": 1.0}).fillna(-1.0)
    key = (best * sign).fillna(math.inf)
    return (table.assign(_key=key).sort_values(["split", "metric", "metric_variant", "_key", "method"], kind="stable")
            .drop(columns="_key").reset_index(drop=True))


def _split_sample_id(sample_id: str) -> tuple[str, str]:
    """``tennis/00003`` -> (``tennis``, ``00003``): the video / identity, and the item inside it."""
    head, sep, rest = sample_id.partition("/")
    return (head, rest) if sep else ("", sample_id)


def efficiency_rows(reported: pd.DataFrame) -> pd.DataFrame:
    """Runtime (ms/frame) beside PSNR for every method of a published table that prints both.

    One row per (task, table, method, quality benchmark/split) from the reported rows only.
    """
    runtime = reported[(reported["metric"] == "runtime") & reported["unit"].isin(list(_TIME_TO_MS))]
    runtime = runtime[runtime["value"].notna()]
    out = []
    for _, t in runtime.iterrows():
        quality = reported[(reported["table"] == t["table"]) & (reported["method"] == t["method"])
                           & (reported["metric"] == "psnr") & reported["value"].notna()]
        for _, q in quality.iterrows():
            out.append({"task": t["task"], "table": t["table"], "method": t["method"],
                        "runtime_ms": float(t["value"]) * _TIME_TO_MS[t["unit"]], "runtime_note": t["note"],
                        "benchmark": f"{q['benchmark']}/{q['split']}", "psnr": float(q["value"]),
                        "metric_variant": q["metric_variant"]})
    return pd.DataFrame(out, columns=["task", "table", "method", "runtime_ms", "runtime_note", "benchmark", "psnr",
                                      "metric_variant"])


def efficiency_table(reported: pd.DataFrame) -> pd.DataFrame:
    """The published efficiency figures (rows without a metric variant), one row per (task, table, method).

    Columns: ``task, table, method``, one ``"<metric> (<unit>)"`` column per figure, and ``timing``
    (the notes of the runtime rows: GPU, resolution, number of runs).
    """
    rows = reported[(reported["metric_variant"].fillna("") == "") & reported["value"].notna()].copy()
    if rows.empty:
        return pd.DataFrame(columns=["task", "table", "method", "timing"])
    rows["figure"] = [f"{m} ({u})" if u else m for m, u in zip(rows["metric"], rows["unit"].fillna(""))]
    wide = rows.pivot_table(index=["task", "table", "method"], columns="figure", values="value", aggfunc="first",
                            sort=False).reset_index()
    wide.columns.name = None
    notes = rows[rows["metric"] == "runtime"].groupby(["task", "table", "method"], sort=False)["note"].first()
    wide["timing"] = [notes.get((t, tb, m), "") for t, tb, m in zip(wide["task"], wide["table"], wide["method"])]
    return wide


ABLATION_COLUMNS = ["task", "table", "method", "benchmark", "split", "metric", "metric_variant", "reported", "unit",
                    "printed_value", "printed_unit", "note"]


def ablation_table() -> pd.DataFrame:
    """The thesis' ablation rows for the task pages, in thesis order (``reported`` is the raw value)."""
    return ablation_rows().rename(columns={"value": "reported"})[ABLATION_COLUMNS]


def load_site_data(results: str | Path) -> SiteData:
    """Read every current run under ``results`` (``triptych.results.select_runs``) and every published row."""
    results = Path(results)
    rows = with_rank_intervals(leaderboard_rows(results, all_reported=True))
    runs = current_runs(results).current
    samples = [read_samples(results / r["run_id"]) for r in runs]
    all_samples = pd.concat(samples, ignore_index=True) if samples else pd.DataFrame(
        columns=["run_id", "benchmark", "metric", "metric_variant", "method", "sample_id", "value"])
    quality = rows[(rows["source"] == "reproduced") | (rows["metric_variant"].fillna("") != "")]
    site = SiteData(results=results, rows=rows, runs=runs,
                    efficiency=efficiency_rows(rows[rows["source"] == "reported"]),
                    efficiency_figures=efficiency_table(rows[rows["source"] == "reported"]),
                    ablations=ablation_table())
    for task in TASKS:
        task_rows = quality[quality["task"] == task]
        for benchmark in sorted(set(task_rows["benchmark"])):
            bench_rows = task_rows[task_rows["benchmark"] == benchmark]
            table = _sort_table(merge_table(bench_rows))
            bench_samples = all_samples[(all_samples["benchmark"] == benchmark)
                                        & (all_samples["task"] == task)].copy() if len(all_samples) else all_samples
            if len(bench_samples):
                parts = bench_samples["sample_id"].map(_split_sample_id)
                bench_samples["group"] = [p[0] for p in parts]
                bench_samples["item"] = [p[1] for p in parts]
            run_ids = sorted(set(table["run_id"]) - {""})
            site.benchmarks.append(BenchmarkPage(task, benchmark, f"{task}-{slug(benchmark)}.html", table,
                                                 bench_samples, run_ids))
    return site
