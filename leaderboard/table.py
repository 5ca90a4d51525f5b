"""Reproduced rows (aggregated from runs) beside the reported ones: one table for every reader."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from triptych.leaderboard.reported import load_ablations, load_reported
from triptych.published import run_pairing, subset_label
from triptych.results import list_runs, read_samples

# The published systems whose rows are shown by default next to reproduced ones.
REFERENCE_METHODS = {"video_inpainting": ("E2FGVI",), "frame_interpolation": ("AMT-S", "AMT-L", "AMT-G"),
                     "personalization": ("PhotoMaker",)}
KEYS = ["task", "benchmark", "split", "benchmark_variant", "method", "method_version", "metric", "metric_variant",
        "metric_version", "unit"]


def reproduced_rows(results: str | Path) -> pd.DataFrame:
    """One row per (run, metric variant): the pooled mean of per-sample values (a set-level metric has
    one row, which is its value). Incomplete runs are left out. Each row carries its run's ``subset``
    (``"6/3782"``, or ``""`` for the full split) and ``pairing`` (``triptych.published.Pairing``: the
    published label it may pair with, or why it pairs with nothing)."""
    frames = []
    for run in list_runs(results):
        if run.get("status") != "complete":
            continue
        samples = read_samples(Path(results) / run["run_id"])
        if samples.empty:
            continue
        agg = samples.groupby(KEYS, dropna=False)["value"].agg(value="mean", n="count").reset_index()
        agg["run_id"] = run["run_id"]
        agg["code_revision"] = (run.get("code") or {}).get("git_revision")
        agg["manifest_sha256"] = (run.get("data") or {}).get("manifest_sha256")
        agg["subset"] = subset_label(run)
        agg["pairing"] = [run_pairing(run)] * len(agg)
        frames.append(agg)
    if not frames:
        return pd.DataFrame(columns=[*KEYS, "value", "n", "run_id", "subset", "pairing", "source"])
    out = pd.concat(frames, ignore_index=True)
    out["source"] = "reproduced"
    return out


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
