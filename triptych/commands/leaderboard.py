"""``triptych leaderboard show|build``: reported rows beside reproduced ones, in the terminal or as a static site."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from triptych.task_list import TASKS


leaderboard_app = typer.Typer(help="Published and reproduced numbers, side by side.", no_args_is_help=True)


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.6g}"


def _interval(row) -> str:
    """``[low, high] 95% / 5 triplets`` for a reproduced row, why there is none, or "" for a reported row."""
    if not row["run_id"]:
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
    task: Optional[str] = typer.Option(None, "--task", help="only this task: " + ", ".join(TASKS)),
    all_reported: bool = typer.Option(False, "--all-reported", help="every published method, not only the "
                                      "reference systems (E2FGVI, AMT, PhotoMaker)"),
    ablations: bool = typer.Option(True, "--ablations/--no-ablations", help="also print the thesis' ablation "
                                   "tables, each task's as a section of its own (never paired)"),
) -> None:
    """Reported rows (raw scale: E_warp x1e-2 and % already converted) beside reproduced rows: a reproduced
    row that pairs (README "Pairing rule") shows the published value, the difference and whether it is
    within the metric's tolerance; one that does not says why. Each reproduced value has its bootstrap
    interval over the benchmark's sampling unit and its rank range (methods whose intervals overlap share
    ranks)."""
    import pandas as pd

    from triptych.leaderboard.sitedata import merge_table
    from triptych.leaderboard.table import ablation_rows, leaderboard_rows, with_rank_intervals
    from triptych.results import superseded_notes

    if task is not None and task not in TASKS:
        from triptych.errors import UnknownNameError

        raise UnknownNameError(f"--task {task!r} is not a task", fix=f"pass one of {', '.join(TASKS)}")
    rows = leaderboard_rows(results, task, all_reported)
    rows = with_rank_intervals(rows) if "ci_low" in rows else rows.assign(rank="")
    for note in superseded_notes(results):
        typer.echo(note, err=True)
    console = Console(width=240)
    for task_name in [t for t in TASKS if t in set(rows["task"])]:
        task_rows = rows[rows["task"] == task_name]
        merged = pd.concat([merge_table(group) for _, group in task_rows.groupby("benchmark", sort=True)],
                           ignore_index=True)
        table = Table("source", "benchmark", "split", "method", "metric", "variant", "reported", "reproduced",
                      "interval", "rank", "difference", "within tol.", "unit", "n", "paired with / why not", title=task_name)
        merged = merged.assign(_source=["reproduced" if r else "reported" for r in merged["run_id"]])
        labels = [m + (f" v{v}" if v else "") for m, v in zip(merged["method"], merged["method_version"])]
        table.columns[3].no_wrap, table.columns[3].min_width = True, max(map(len, labels), default=6)
        reasons: dict[str, int] = {}  # printed once below the table, referred to as [n]
        for index, r in merged.sort_values(["_source", "benchmark", "split", "method", "metric"],
                                           kind="stable").iterrows():
            n = r.get("n")
            paired = ""
            if r["run_id"] and r["reported_table"]:
                paired = f"{r['published_method']} (table {r['reported_table']})"
            elif r["run_id"]:
                paired = f"unpaired [{reasons.setdefault(r['pairing'], len(reasons) + 1)}]"
            within = "" if r["within_tolerance"] is None else ("yes" if r["within_tolerance"] else "no")
            table.add_row(r["_source"], r["benchmark"], str(r["split"]), labels[index], r["metric"],
                          str(r["metric_variant"] or "-"), _fmt(r["reported"]), _fmt(r["reproduced"]),
                          _interval(r), r["rank"], _fmt(r["difference"]), within, str(r["unit"] or ""),
                          "" if n is None or (isinstance(n, float) and math.isnan(n)) else str(int(n)), paired)
        console.print(table)
        for reason, number in reasons.items():
            console.print(f"[{number}] {reason}", markup=False, soft_wrap=True)
    if ablations:
        _print_ablations(console, ablation_rows(task))


def _print_ablations(console: Console, rows) -> None:  # noqa: ANN001 (a pandas frame)
    """One table per task: the ablation rows in thesis order, with their notes."""
    for task_name in [t for t in TASKS if t in set(rows["task"])]:
        table = Table("table", "method", "benchmark", "split", "metric", "variant", "value", "unit", "note",
                      title=f"{task_name}: ablations (published only; trained differently from the main tables, "
                            "never paired)")
        for _, r in rows[rows["task"] == task_name].iterrows():
            table.add_row(r["table"], r["method"], r["benchmark"], str(r["split"]), r["metric"],
                          str(r["metric_variant"] or "-"), _fmt(r["value"]), str(r["unit"] or ""), r["note"])
        console.print(table)


@leaderboard_app.command("build")
def build_command(
    results: Path = typer.Option(..., "--results", help="results folder with scored runs"),
    out: Path = typer.Option(..., "--out", help="folder of the site (created; a previous site is rebuilt in place)"),
) -> None:
    """A static site (tables, provenance, plots, CSV/JSON) that opens from file:// with no server or network."""
    from triptych.leaderboard.build import build_site  # jinja2 is needed only here
    from triptych.results import superseded_notes

    index = build_site(results, out)
    for note in superseded_notes(results):
        typer.echo(note, err=True)
    typer.echo(f"site written: {index.resolve().as_uri()}", err=True)
    typer.echo(str(index))


def register(app: typer.Typer) -> None:
    app.add_typer(leaderboard_app, name="leaderboard")
