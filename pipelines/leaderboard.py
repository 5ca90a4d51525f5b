"""Second command of DVC stage ``score_sample``: a results folder's leaderboard as DVC metrics and plots.

``--metrics`` (a folder, declared a top-level ``metrics`` entry of ``dvc.yaml``) holds one small JSON per
reproduced (benchmark, method): the summary metrics named by ``--summary`` (``params.yaml``
``leaderboard.summary``), keyed by metric name, so ``dvc metrics show`` prints one row per run and one column
per summary metric. ``--plots`` (a top-level ``plots`` entry) is one row per scored sample (benchmark,
method, sample_id, metric, value), for ``dvc plots show`` / ``dvc plots diff``. ``--out`` holds every
leaderboard row, the table ``triptych leaderboard show`` prints (``triptych.leaderboard.table.leaderboard_rows``:
the reference systems' reported rows for the metrics reproduced, beside the reproduced rows).

The values depend on the machine that scored them (run ids, timings, float rounding of another CPU), so
none of these files is a stage output hashed into ``dvc.lock``: ``dvc repro`` on a fresh clone leaves the
checkout clean (README "Data pipeline (DVC)"). inf is written as ``"inf"``; a missing value as null.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd

from triptych.atomic import atomic_write
from triptych.leaderboard.table import leaderboard_rows
from triptych.results import current_runs, read_samples
from triptych.pipelines.stage_io import run_stage, write_json

PLOT_COLUMNS = ("benchmark", "method", "metric", "sample_id", "metric_variant", "value")
COLUMNS = ("source", "task", "benchmark", "split", "benchmark_variant", "method", "method_version", "metric",
           "metric_variant", "metric_version", "unit", "value", "n", "subset")
RUN_KEY = ("benchmark", "split", "benchmark_variant", "method", "method_version")


def summary_files(records: list[dict], summary: list[str]) -> dict[str, dict[str, float]]:
    """``{<benchmark>/<method>: {metric: value}}`` for the reproduced rows whose metric is in ``summary``.
    A benchmark or method scored under several splits, variants or versions gets them in its file name.

    >>> rows = [{"source": "reproduced", "benchmark": "b", "split": "test", "benchmark_variant": "v",
    ...          "method": "m", "method_version": "1", "metric": "psnr", "value": 20.5}]
    >>> summary_files(rows, ["psnr", "ssim"])
    {'b/m': {'psnr': 20.5}}
    """
    runs: dict[tuple, dict[str, float]] = {}
    for r in records:
        if r["source"] == "reproduced" and r["metric"] in summary:
            runs.setdefault(tuple(r.get(c) for c in RUN_KEY), {})[r["metric"]] = r["value"]
    short = [f"{key[0]}/{key[3]}" for key in runs]
    return {(name if short.count(name) == 1 else "/".join(str(k or "-") for k in key)): values
            for name, (key, values) in zip(short, runs.items())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m triptych.pipelines.leaderboard", description=__doc__)
    parser.add_argument("--results", type=Path, default=Path("datasets/build/results"))
    parser.add_argument("--out", type=Path, default=Path("datasets/build/leaderboard.json"))
    parser.add_argument("--metrics", type=Path, default=Path("datasets/build/metrics"))
    parser.add_argument("--summary", default="psnr,ssim,face_sim,clip_t,clip_i",
                        help="comma-separated metric names written to --metrics")
    parser.add_argument("--plots", type=Path, default=Path("datasets/build/samples.csv"))
    args = parser.parse_args(argv)
    rows = leaderboard_rows(args.results)
    records = []
    for row in rows.to_dict("records"):
        records.append({c: (None if row.get(c) is None or (isinstance(row.get(c), float) and row[c] != row[c]) else row[c])
                        for c in COLUMNS if c in row})
    records.sort(key=lambda r: tuple(str(r.get(c)) for c in COLUMNS))
    write_json(args.out, {"rows": records})
    summaries = summary_files(records, [m.strip() for m in args.summary.split(",") if m.strip()])
    shutil.rmtree(args.metrics, ignore_errors=True)  # this stage's own folder: no file of an earlier run stays
    for name, values in summaries.items():
        write_json(args.metrics / f"{name}.json", values)
    samples = [read_samples(args.results / run["run_id"]) for run in current_runs(args.results).current]
    table = pd.concat(samples, ignore_index=True) if samples else pd.DataFrame(columns=list(PLOT_COLUMNS))
    table = table.loc[:, list(PLOT_COLUMNS)].sort_values(list(PLOT_COLUMNS[:4]), kind="stable")
    atomic_write(args.plots, lambda tmp: table.to_csv(tmp, index=False))
    print(f"leaderboard: {len(records)} rows -> {args.out}; {len(summaries)} summaries -> {args.metrics}; "
          f"{len(table)} sample rows -> {args.plots}")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
