"""``triptych doctor``: Python, torch and device, optional extras, weights, data roots, and what each missing
piece blocks."""

from __future__ import annotations

import json
import sys

import typer


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_command(as_json: bool = typer.Option(False, "--json", help="print the report as JSON")) -> None:
        """What this installation can run: Python, torch and its device, which optional extras are installed,
        which weights are present / pinned / missing, where the data roots point, and what each missing piece
        blocks. Changes nothing, downloads nothing."""
        from triptych.doctor import diagnose, report_lines

        report = diagnose()
        if as_json:
            sys.stdout.write(json.dumps(report, indent=2) + "\n")
            return
        typer.echo("\n".join(report_lines(report)))
