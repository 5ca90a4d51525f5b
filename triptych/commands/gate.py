"""``triptych gate``: fail a pull request whose scores regress beyond tolerance (exit 1), and say why."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("gate")
    def gate_command(
        baseline: Path = typer.Option(..., "--baseline", help="results folder, or a committed aggregates JSON"),
        candidate: Path = typer.Option(..., "--candidate", "--current", help="results folder (or aggregates JSON) "
                                       "to check"),
        out: Optional[Path] = typer.Option(None, "--out", help="report folder: gate.md (pull-request comment), "
                                           "gate.json, aggregates.json (the candidate's, to commit as baseline)"),
        rules: Optional[Path] = typer.Option(None, "--rules", help="YAML of tolerance overrides: "
                                             "'metric[:variant]: {absolute: x, relative: y}'"),
    ) -> None:
        """Compare aggregates per (benchmark, split, variant, method, metric, metric variant, metric version).

        Exit 1 on a regression beyond the metric's gate_tolerance (registry direction), a metric version
        change, a data-manifest change, a changed sample set, or a missing row; improvements and new rows
        pass. Of several runs of one request in a folder, the newest complete run counts (the others are
        named on stderr).
        """
        from triptych.leaderboard.gate import run_gate
        from triptych.leaderboard.gate_report import print_screen, write_reports
        from triptych.results import superseded_notes

        result, aggregates = run_gate(baseline, candidate, rules)
        for note in [*superseded_notes(baseline), *superseded_notes(candidate)]:
            typer.echo(note, err=True)
        if out is not None:
            for path in write_reports(result, aggregates, out):
                typer.echo(f"wrote {path}", err=True)
        print_screen(result, report_dir=out)
        if not result.passed:
            raise typer.Exit(1)
