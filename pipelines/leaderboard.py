"""DVC stage ``leaderboard``: the leaderboard rows of a results folder as a JSON metrics file.

The rows are ``triptych.leaderboard.table.leaderboard_rows`` (the reference systems' reported rows for
the metrics reproduced, beside the reproduced rows), the table ``triptych leaderboard show`` prints.
``dvc.yaml`` declares the file a metric with ``cache: false``, so ``dvc metrics show`` reads it and git
tracks it. inf is written as ``"inf"``; a missing value as null.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from triptych.leaderboard.table import leaderboard_rows
from triptych.pipelines.stage_io import run_stage, write_json

COLUMNS = ("source", "task", "benchmark", "split", "benchmark_variant", "method", "method_version", "metric",
           "metric_variant", "metric_version", "unit", "value", "n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m triptych.pipelines.leaderboard", description=__doc__)
    parser.add_argument("--results", type=Path, default=Path("datasets/build/results"))
    parser.add_argument("--out", type=Path, default=Path("datasets/build/leaderboard.json"))
    args = parser.parse_args(argv)
    rows = leaderboard_rows(args.results)
    records = []
    for row in rows.to_dict("records"):
        records.append({c: (None if row.get(c) is None or (isinstance(row.get(c), float) and row[c] != row[c]) else row[c])
                        for c in COLUMNS if c in row})
    records.sort(key=lambda r: tuple(str(r.get(c)) for c in COLUMNS))
    write_json(args.out, {"rows": records})
    print(f"leaderboard: {len(records)} rows -> {args.out}")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
