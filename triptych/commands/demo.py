"""``triptych demo --out DIR``: the whole idea end to end on the embedded sample, offline."""

from __future__ import annotations

from pathlib import Path

import typer

from triptych.commands import progress_options
from triptych.task_list import DEMO_RUNS


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_command(out: Path = typer.Option(Path("runs/demo"), "--out", help="results folder"),
                     progress: bool = progress_options.progress, quiet: bool = progress_options.quiet) -> None:
        """Score simple baselines of all three tasks on the embedded sample (runs already complete and up to
        date in OUT are reused), then show the leaderboard. Progress is shown on a terminal."""
        from triptych.progress import set_mode

        set_mode(progress, quiet)
        from triptych.commands.leaderboard import show_command
        from triptych.registry import registry
        from triptych.scoring import score

        known = registry().benchmarks
        for benchmark, method in DEMO_RUNS:
            if benchmark not in known:
                continue
            run_dir = score(benchmark, out, method=method)
            typer.echo(f"{method} on {benchmark}: {run_dir}", err=True)
        show_command(results=out, task=None, all_reported=False, ablations=False)
