"""``triptych list metrics|benchmarks|methods``"""

from __future__ import annotations

import json
import sys
from enum import Enum

import typer
from rich.console import Console
from rich.table import Table

from triptych.registry import registry


class Kind(str, Enum):
    metrics = "metrics"
    benchmarks = "benchmarks"
    methods = "methods"


def _rows(kind: Kind) -> tuple[list[str], list[list[str]]]:
    reg = registry()
    if kind is Kind.metrics:
        return (["metric", "variants (version)", "level", "direction", "tasks", "description"],
                [[s.name, ", ".join(f"{v.name} (v{v.version})" for v in s.variants.values()), s.level,
                  f"{s.direction} is better", ", ".join(s.tasks), s.description] for s in reg.metrics.values()])
    if kind is Kind.benchmarks:
        return (["benchmark", "split", "task", "version", "variants", "metrics", "description"],
                [[s.name, s.split, s.task, str(s.version), ", ".join(s.variants),
                  ", ".join(f"{m}:{v}" for m, v in s.metrics), s.description] for s in reg.benchmarks.values()])
    return (["method", "task", "version", "weights", "description"],
            [[s.name, s.task, str(s.version), ", ".join(s.weights) or "-", s.description]
             for s in reg.methods.values()])


def register(app: typer.Typer) -> None:
    @app.command("list")
    def list_command(
        kind: Kind = typer.Argument(..., help="what to list"),
        as_json: bool = typer.Option(False, "--json", help="print JSON on stdout"),
    ) -> None:
        """List the registered metrics, benchmarks or methods."""
        header, rows = _rows(kind)
        for plugin in registry().broken:
            if plugin.kind == kind.value:
                declared = f" (declares {', '.join(plugin.names)})" if plugin.names else ""
                typer.echo(f"warning: broken plugin, not listed{declared}: {plugin.error}", err=True)
        if as_json:
            sys.stdout.write(json.dumps([dict(zip(header, r)) for r in rows], indent=2) + "\n")
            return
        table = Table(*header, title=f"triptych {kind.value}")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
