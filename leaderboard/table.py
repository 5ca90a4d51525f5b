"""Reproduced rows (aggregated from runs) beside the reported ones: one table for every reader."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

import pandas as pd

from triptych.leaderboard.reported import load_ablations, load_reported
from triptych.published import run_pairing, subset_label
from triptych.results import current_runs, read_samples
from triptych.task_list import REFERENCE_METHODS

KEYS = ["task", "benchmark", "split", "benchmark_variant", "method", "method_version", "metric", "metric_variant",
        "metric_version", "unit"]


def samples_sha256(sample_ids: Iterable[str]) -> str:
    """The identity of a sample set: sha256 of its sorted, distinct sample ids (one per line)."""
    return hashlib.sha256("\n".join(sorted(set(sample_ids))).encode("utf-8")).hexdigest()


INTERVAL_COLUMNS = ["ci_low", "ci_high", "ci_level", "ci_unit", "ci_units", "ci_note"]


def _intervals(run: dict) -> dict[tuple[str, str], dict]:
    """(metric, variant) -> the interval its run.json records (runs scored before intervals have none)."""
    return {(m["metric"], m["variant"]): (m.get("aggregate") or {}).get("interval") or {}
            for m in run.get("metrics") or []}


def reproduced_rows(results: str | Path) -> pd.DataFrame:
    """One row per (run, metric variant): the pooled mean of per-sample values (a set-level metric has
    one row, which is its value), with the sample set it averages (``sample_ids``, ``samples_sha256``) and
    the bootstrap interval its run.json records (``ci_*``, over the benchmark's sampling unit). Only the
    current runs count (``triptych.results.select_runs``: per request, the newest complete run). Each row
    carries its run's ``subset`` (``"6/3782"``, or ``""`` for the full split) and ``pairing``
    (``triptych.published.Pairing``: the published label it may pair with, or why it pairs with nothing)."""
    frames = []
    for run in current_runs(results).current:
        samples = read_samples(Path(results) / run["run_id"])
        if samples.empty:
            continue
        grouped = samples.groupby(KEYS, dropna=False)
        agg = grouped["value"].agg(value="mean", n="count").reset_index()
        ids = grouped["sample_id"].agg(lambda s: tuple(sorted(s))).reset_index(drop=True)
        agg["sample_ids"] = ids
        agg["samples_sha256"] = [samples_sha256(i) for i in ids]
        agg["run_id"] = run["run_id"]
        intervals = _intervals(run)
        for column in INTERVAL_COLUMNS:
            agg[column] = [intervals.get((m, v), {}).get(column[3:])
                           for m, v in zip(agg["metric"], agg["metric_variant"])]
        agg["code_revision"] = (run.get("code") or {}).get("git_revision")
        agg["manifest_sha256"] = (run.get("data") or {}).get("manifest_sha256")
        agg["subset"] = subset_label(run)
        agg["pairing"] = [run_pairing(run)] * len(agg)
        frames.append(agg)
    if not frames:
        return pd.DataFrame(columns=[*KEYS, "value", "n", *INTERVAL_COLUMNS, "run_id", "subset", "pairing", "source"])
    out = pd.concat(frames, ignore_index=True)
    out["source"] = "reproduced"
    return out


def with_rank_intervals(rows: pd.DataFrame) -> pd.DataFrame:
    """Add ``rank`` ("1", or "1-2" where intervals overlap) to reproduced rows, per benchmark, split,
    benchmark variant, metric and metric variant (``triptych.stats.rank_intervals``); reported rows get ""."""
    from triptych.registry import registry
    from triptych.stats import rank_intervals

    rows = rows.copy()
    rows["rank"] = ""
    reproduced = rows[rows["source"] == "reproduced"]
    for _, group in reproduced.groupby(["benchmark", "split", "benchmark_variant", "metric", "metric_variant"],
                                       dropna=False):
        spec = registry().metrics.get(str(group["metric"].iloc[0]))
        direction = spec.direction if spec is not None else "higher"
        ranks = rank_intervals(list(group["value"].astype(float)), list(_or_none(group["ci_low"])),
                               list(_or_none(group["ci_high"])), direction)
        rows.loc[group.index, "rank"] = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranks]
    return rows


def _or_none(column: pd.Series) -> list:
    return [None if v is None or (isinstance(v, float) and pd.isna(v)) else float(v) for v in column]


def leaderboard_rows(results: str | Path | None, task: str | None = None, all_reported: bool = False) -> pd.DataFrame:
    """Reported rows and reproduced rows in one frame.

    Unless ``all_reported``, the reported rows are the reference methods' (E2FGVI, AMT, PhotoMaker) and,
    when results are given, only for the metrics that the results reproduce.
    """
    reported = load_reported()
    reproduced = reproduced_rows(results) if results is not None else None
    if not all_reported:
        measured = None
        if reproduced is not None and not reproduced.empty:
            measured = set(zip(reproduced["task"], reproduced["metric"]))
        keep = [method in REFERENCE_METHODS.get(task_name, ()) and (measured is None or (task_name, metric) in measured)
                for task_name, method, metric in zip(reported["task"], reported["method"], reported["metric"])]
        reported = reported[keep]
    rows = pd.concat([reported] if reproduced is None else [reported, reproduced], ignore_index=True)
    if task is not None:
        rows = rows[rows["task"] == task]
    return rows


def ablation_rows(task: str | None = None) -> pd.DataFrame:
    """The thesis' ablation rows (tables 3.2-3.5, 4.3-4.9, 5.6-5.7), in thesis order: a section of their
    own, never paired with main-table or reproduced rows (``leaderboard.reported``)."""
    rows = load_ablations()
    return rows if task is None else rows[rows["task"] == task].reset_index(drop=True)
