"""``triptych power --benchmark B --metric M --results DIR``: the smallest paired difference B can resolve."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("power")
    def power_command(
        benchmark: str = typer.Option(..., "--benchmark", help="benchmark name (see 'triptych list benchmarks')"),
        metric: str = typer.Option(..., "--metric", help="metric or metric:variant"),
        results: Path = typer.Option(Path("results"), "--results", help="results folder with two or more runs of "
                                     "the benchmark (methods, or re-runs with other seeds)"),
        alpha: float = typer.Option(0.05, "--alpha", help="two-sided test level"),
        power: float = typer.Option(0.8, "--power", help="probability of detecting the difference"),
        as_json: bool = typer.Option(False, "--json", help="print the rows as JSON"),
    ) -> None:
        """The minimum detectable paired difference, from the per-unit variance of observed differences."""
        from triptych.compare import detectable_differences
        from triptych.errors import TriptychError
        from triptych.results import json_safe
        from triptych.stats import count_of

        if not (0 < alpha < 1 and 0 < power < 1):
            raise TriptychError(f"--alpha {alpha} / --power {power}: both must be in (0, 1)", fix="e.g. 0.05 and 0.8")
        rows = detectable_differences(results, benchmark, metric, alpha, power)
        if as_json:
            typer.echo(json.dumps(json_safe(rows.to_dict("records")), indent=2))
            return
        for r in rows.to_dict("records"):
            typer.echo(f"{benchmark} {r['metric']}:{r['metric_variant']}  {r['method_b']} - {r['method_a']}: "
                       f"observed {r['difference']:+.4g}, standard error {r['standard_error']:.4g} over "
                       f"{count_of(r['units'], r['unit'])} ({r['samples']} samples); smallest detectable difference at "
                       f"alpha {alpha:g}, power {power:g}: {r['minimum_detectable']:.4g}")
