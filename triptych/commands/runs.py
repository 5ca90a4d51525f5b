"""``triptych runs list|show``"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console


runs_app = typer.Typer(help="Inspect scored runs (Parquet rows + run JSON).", no_args_is_help=True)
RESULTS_OPTION = typer.Option(Path("results"), "--results", help="results folder")


@runs_app.command("list")
def list_command(results: Path = RESULTS_OPTION) -> None:
    """One line per run, newest first, with the full run id ('runs show' takes it, or any unique prefix); per
    request, the newest complete run is current (gate and leaderboard read only current runs) and older
    complete runs show the run that supersedes them."""
    from triptych.listings import text_lines
    from triptych.results import current_runs

    selection = current_runs(results)
    current = {r["run_id"] for r in selection.current}

    def role(run: dict) -> str:
        return ("yes" if run["run_id"] in current else f"superseded by {selection.superseded[run['run_id']]}"
                if run["run_id"] in selection.superseded else "no (unfinished)")

    columns = [("run_id", lambda r: r["run_id"]), ("status", lambda r: r.get("status", "?")),
               ("benchmark", lambda r: r.get("benchmark", "")), ("method", lambda r: r.get("method", "")),
               ("metrics", lambda r: ",".join(f"{m['metric']}:{m['variant']}" for m in r.get("metrics", []))),
               ("current", role)]
    typer.echo(f"runs in {results}", err=True)
    typer.echo("\n".join(text_lines(selection.runs, columns, total=10_000)))  # never cut: ids are used in full


@runs_app.command("show")
def show_command(run: str = typer.Argument(..., help="run id, any unique prefix of one, or the run's folder, "
                                                   "in --results"),
                 results: Path = RESULTS_OPTION,
                 as_json: bool = typer.Option(False, "--json", help="print the run JSON")) -> None:
    """The run's provenance and its per-metric aggregates."""
    from triptych.results import read_run, read_samples, run_folder

    run_dir = run_folder(results, run)
    meta = read_run(run_dir)
    if as_json:
        sys.stdout.write(json.dumps(meta, indent=2) + "\n")
        return
    samples = read_samples(run_dir)
    console = Console()
    code = meta.get("code", {})
    console.print(f"[bold]{meta['run_id']}[/bold] {meta.get('status')}  revision {code.get('git_revision')} "
                  f"dirty={code.get('git_dirty')}  created {meta.get('created_utc')}")
    summary = samples.groupby(["metric", "metric_variant", "metric_version", "unit"])["value"].agg(["mean", "count"])
    console.print(summary.to_string())


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
