"""``triptych leaderboard show|build``: reported rows beside reproduced ones, in the terminal or as a static site."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table


leaderboard_app = typer.Typer(help="Published and reproduced numbers, side by side.", no_args_is_help=True)
TASK_ORDER = ("video_inpainting", "frame_interpolation", "personalization")


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.6g}"


def _interval(row) -> str:
    """``[low, high] 95% / 5 triplets`` for a reproduced row, why there is none, or "" for a reported row."""
    if row["source"] != "reproduced":
        return ""
    from triptych.stats import count_of

    low, units = row.get("ci_low"), row.get("ci_units")
    if units is None or (isinstance(units, float) and math.isnan(units)):
        return "not recorded"
    if low is None or (isinstance(low, float) and math.isnan(low)):
        return f"none ({count_of(int(units), row['ci_unit'])})"
    level = f"{float(row['ci_level']) * 100:g}%"
    return f"[{_fmt(low)}, {_fmt(row['ci_high'])}] {level} / {count_of(int(units), row['ci_unit'])}"


@leaderboard_app.command("show")
def show_command(
    results: Optional[Path] = typer.Option(None, "--results", help="results folder with scored runs"),
    task: Optional[str] = typer.Option(None, "--task", help="only this task"),
    all_reported: bool = typer.Option(False, "--all-reported", help="every published method, not only the "
                                      "reference systems (E2FGVI, AMT, PhotoMaker)"),
) -> None:
    """Reported rows (raw scale: E_warp x1e-2 and % already converted) beside reproduced rows, each
    reproduced value with its bootstrap interval over the benchmark's sampling unit and its rank range
    (methods whose intervals overlap share ranks)."""
    from triptych.leaderboard.table import leaderboard_rows, with_rank_intervals

    rows = leaderboard_rows(results, task, all_reported)
    rows = with_rank_intervals(rows) if "ci_low" in rows else rows.assign(rank="")
    console = Console(width=200)
    for task_name in [t for t in TASK_ORDER if t in set(rows["task"])]:
        table = Table("source", "benchmark", "split", "method", "metric", "variant", "value", "interval", "rank",
                      "unit", "n", title=task_name)
        subset = rows[rows["task"] == task_name].sort_values(["source", "benchmark", "split", "method", "metric"])
        for _, r in subset.iterrows():
            n = r.get("n")
            version = r.get("method_version")
            method = r["method"] + (f" v{version}" if isinstance(version, str) and version else "")
            table.add_row(r["source"], r["benchmark"], str(r["split"]), method, r["metric"],
                          str(r["metric_variant"] or "-"), _fmt(r["value"]), _interval(r), r["rank"],
                          str(r["unit"] or ""),
                          "" if n is None or (isinstance(n, float) and math.isnan(n)) else str(int(n)))
        console.print(table)


@leaderboard_app.command("build")
def build_command(
    results: Path = typer.Option(..., "--results", help="results folder with scored runs"),
    out: Path = typer.Option(..., "--out", help="folder of the site (created; a previous site is rebuilt in place)"),
) -> None:
    """A static site (tables, provenance, plots, CSV/JSON) that opens from file:// with no server or network."""
    from triptych.leaderboard.build import build_site  # jinja2 is needed only here

    index = build_site(results, out)
    typer.echo(f"site written: {index.resolve().as_uri()}", err=True)
    typer.echo(str(index))


def register(app: typer.Typer) -> None:
    app.add_typer(leaderboard_app, name="leaderboard")
