"""DVC stage ``leaderboard``: the leaderboard rows of a results folder as DVC metrics and plots.

``--out`` (a DVC metric) holds ``reproduced``: ``{benchmark: {method: {metric_variant: value}}}``, the
pooled aggregates that ``dvc metrics diff`` compares between revisions, and ``rows``: every leaderboard row.
``--plots`` (a DVC plot) is one row per scored sample (benchmark, method, sample_id, metric, value), for
``dvc plots show`` / ``dvc plots diff``.

The rows are ``triptych.leaderboard.table.leaderboard_rows`` (the reference systems' reported rows for
the metrics reproduced, beside the reproduced rows), the table ``triptych leaderboard show`` prints.
``dvc.yaml`` declares the file a metric with ``cache: false``, so ``dvc metrics show`` reads it and git
tracks it. inf is written as ``"inf"``; a missing value as null.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from triptych.atomic import atomic_write
from triptych.leaderboard.table import leaderboard_rows
from triptych.results import list_runs, read_samples
from triptych.pipelines.stage_io import run_stage, write_json

PLOT_COLUMNS = ("benchmark", "method", "metric", "sample_id", "metric_variant", "value")
COLUMNS = ("source", "task", "benchmark", "split", "benchmark_variant", "method", "method_version", "metric",
           "metric_variant", "metric_version", "unit", "value", "n", "subset")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m triptych.pipelines.leaderboard", description=__doc__)
    parser.add_argument("--results", type=Path, default=Path("datasets/build/results"))
    parser.add_argument("--out", type=Path, default=Path("datasets/build/leaderboard.json"))
    parser.add_argument("--plots", type=Path, default=Path("datasets/build/samples.csv"))
    args = parser.parse_args(argv)
    rows = leaderboard_rows(args.results)
    records = []
    for row in rows.to_dict("records"):
        records.append({c: (None if row.get(c) is None or (isinstance(row.get(c), float) and row[c] != row[c]) else row[c])
                        for c in COLUMNS if c in row})
    records.sort(key=lambda r: tuple(str(r.get(c)) for c in COLUMNS))
    reproduced: dict = {}
    for r in records:
        if r["source"] == "reproduced":
            key = f"{r['metric']}_{r['metric_variant']}_v{int(r['metric_version'])}"
            reproduced.setdefault(r["benchmark"], {}).setdefault(r["method"], {})[key] = r["value"]
    write_json(args.out, {"reproduced": reproduced, "rows": records})
    samples = [read_samples(args.results / run["run_id"]) for run in list_runs(args.results)
               if run.get("status") == "complete"]
    table = pd.concat(samples, ignore_index=True) if samples else pd.DataFrame(columns=list(PLOT_COLUMNS))
    table = table.loc[:, list(PLOT_COLUMNS)].sort_values(list(PLOT_COLUMNS[:4]), kind="stable")
    atomic_write(args.plots, lambda tmp: table.to_csv(tmp, index=False))
    print(f"leaderboard: {len(records)} rows -> {args.out}; {len(table)} sample rows -> {args.plots}")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
