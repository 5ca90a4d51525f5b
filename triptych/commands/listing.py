"""``triptych list metrics|benchmarks|methods|weights``"""

from __future__ import annotations

import json
import sys
from enum import Enum

import typer

from triptych.listings import KINDS, MAX_WIDTH, text_lines, width
from triptych.registry import registry
from triptych.task_list import TASK_SHORT


class ListKind(str, Enum):
    metrics = "metrics"
    benchmarks = "benchmarks"
    methods = "methods"
    weights = "weights"


def register(app: typer.Typer) -> None:
    @app.command("list", help=f"List the registered metrics (one line per variant), benchmarks, methods or "
                 f"weights, sorted by name: one line each, at most {MAX_WIDTH} columns (the terminal's width when "
                 "narrower); a description that does not fit is cut with '…' (--json has it whole). Tasks: "
                 + ", ".join(f"{short} = {task}" for task, short in TASK_SHORT.items()) + ".")
    def list_command(
        kind: ListKind = typer.Argument(..., help="what to list"),
        as_json: bool = typer.Option(False, "--json", help="print JSON on stdout: one object per entry (per "
                                     "metric variant), with structured fields and the whole description"),
    ) -> None:
        records, columns = KINDS[kind.value]
        rows = records()
        for plugin in registry().broken:
            if plugin.kind == kind.value:
                declared = f" (declares {', '.join(plugin.names)})" if plugin.names else ""
                typer.echo(f"warning: broken plugin, not listed{declared}: {plugin.error}", err=True)
        if as_json:
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
            return
        typer.echo("\n".join(text_lines(rows, columns, width())))
