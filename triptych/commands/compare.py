"""``triptych compare RUN_A RUN_B``: paired difference per metric, its interval and a permutation p-value."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from triptych.commands import interval_options


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare_command(
        run_a: Path = typer.Argument(..., help="run folder A (the reference)"),
        run_b: Path = typer.Argument(..., help="run folder B; differences are B - A"),
        as_json: bool = typer.Option(False, "--json", help="print the rows as JSON"),
        ci_level: float = interval_options.level, ci_method: str = interval_options.method,
        ci_resamples: int = interval_options.resamples, ci_seed: int = interval_options.seed,
    ) -> None:
        """Compare two runs of one benchmark sample by sample; refuses runs whose sample sets differ."""
        from rich.console import Console
        from rich.table import Table

        from triptych.compare import compare_runs
        from triptych.results import json_safe
        from triptych.stats import IntervalSettings, describe_interval

        rows = compare_runs(run_a, run_b, IntervalSettings(ci_level, ci_method, ci_resamples, ci_seed))
        if as_json:
            typer.echo(json.dumps(json_safe(rows.to_dict("records")), indent=2))
            return
        table = Table("metric", "A", "B", "B - A", "interval", "p", "better", "n",
                      title=f"triptych compare: B = {run_b} vs A = {run_a}", title_justify="left")
        for r in rows.to_dict("records"):
            interval = describe_interval({"low": r["ci_low"], "high": r["ci_high"], "level": r["ci_level"],
                                          "unit": r["ci_unit"], "units": r["ci_units"], "note": r["ci_note"]})
            table.add_row(f"{r['metric']}:{r['metric_variant']} v{r['metric_version']} ({r['direction']} is better)",
                          f"{r['a']:.6g}", f"{r['b']:.6g}", f"{r['difference']:+.6g}", interval,
                          "—" if r["p_value"] is None else f"{r['p_value']:.4g}", r["better"], str(r["n"]))
        Console(width=200).print(table)
