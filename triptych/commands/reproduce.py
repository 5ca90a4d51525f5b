"""``triptych reproduce TABLE [--data-root DIR] [--refs DIR] [--method M] [--device D] [--out RESULTS]
[--subset] [--dry-run]``

The plan that reproduces a thesis table (``triptych.reproduce``): its steps with what each needs, one line
per missing piece with how to get it; then (unless ``--dry-run``) each step that has everything runs
through ``triptych score`` (resumable) and every published row is printed beside its reproduced value,
the tolerance and the verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _print_plan(plan) -> None:  # noqa: ANN001 (triptych.reproduce.ReproductionPlan)
    from triptych.reproduce import EfficiencyStep

    rows = sum(len(s.rows) for s in plan.steps)
    typer.echo(f"table {plan.table}: {rows} published row(s) triptych can reproduce in {len(plan.steps)} step(s); "
               f"{len(plan.unreproducible)} it cannot (listed below); data root {plan.data_root}")
    for number, step in enumerate(plan.steps, 1):
        status = "ready" if not step.missing else "missing: " + ", ".join(m.what for m in step.missing)
        typer.echo(f"step {number}: {step.title} [{status}]")
        if isinstance(step, EfficiencyStep):
            typer.echo(f"    triptych efficiency --method {step.method} --runs 0")
        else:
            params = "".join(f" --refs {v}" if k == "refs" else " --subset" if k == "subset" else f" --param {k}={v}"
                             for k, v in step.params.items())
            typer.echo(f"    triptych score --benchmark {step.benchmark} --benchmark-variant {step.benchmark_variant} "
                       f"--method {step.method} {' '.join(f'--metric {m}' for m in step.metrics)}{params}")
        for _, row in step.rows.iterrows():
            variant = f":{row['metric_variant']}" if row["metric_variant"] else ""
            typer.echo(f"    {row['benchmark']}/{row['split']}  {row['metric']}{variant}  published "
                       f"{row['printed_value']:g} {row['printed_unit']}".rstrip())
    missing = plan.missing()
    if missing:
        typer.echo(f"missing ({len(missing)}), one line each:")
        for piece in missing:
            typer.echo(f"  {piece.what}: {piece.how}")
    else:
        typer.echo("missing: nothing")
    if plan.unreproducible:
        typer.echo("not reproducible (method: reason [rows]):")
        groups: dict[tuple[str, str], list[str]] = {}
        for row, reason in plan.unreproducible:
            groups.setdefault((row["method"], reason), []).append(f"{row['benchmark']}/{row['split']} {row['metric']}")
        for (method, reason), cells in groups.items():
            typer.echo(f"  {method}: {reason} [{len(cells)}: {', '.join(cells)}]")


def register(app: typer.Typer) -> None:
    @app.command("reproduce")
    def reproduce_command(
        table: str = typer.Argument(..., help="thesis table: 3.1, 4.1, 4.2 or 5.4"),
        data_root: Optional[Path] = typer.Option(None, "--data-root", help="datasets folder holding the "
                                                 "standardized data (default: the checkout's datasets/, or "
                                                 "TRIPTYCH_DATASETS)"),
        refs: Optional[Path] = typer.Option(None, "--refs", help="reference photos, a folder per identity "
                                            "(table 5.4; default DATA_ROOT/refs/celeb-25id-40prompt)"),
        method: Optional[str] = typer.Option(None, "--method", help="only the steps of this registry method "
                                             "(e.g. amt-s)"),
        device: Optional[str] = typer.Option(None, "--device", help="cuda, cuda:1 or cpu for the models "
                                             "(default: each method's own default)"),
        out: Path = typer.Option(Path("results"), "--out", help="results folder; runs go in OUT/<run_id>/"),
        subset: bool = typer.Option(False, "--subset", help="score the reduced data present (as 'triptych score "
                                    "--subset': recorded as a subset, never paired with the published rows)"),
        dry_run: bool = typer.Option(False, "--dry-run", help="print the plan only"),
    ) -> None:
        """Reproduce a thesis table: plan, what is missing and how to get it, run, published vs reproduced."""
        from triptych.reproduce import ScoreStep, compare_efficiency, compare_run, make_plan, run_score_step
        from triptych.scoring import datasets_root

        root = data_root or datasets_root()
        plan = make_plan(table, root, refs, method, subset)
        _print_plan(plan)
        if dry_run:
            return
        comparisons = []
        for number, step in enumerate(plan.steps, 1):
            if step.missing:
                typer.echo(f"step {number}: skipped, missing {', '.join(m.what for m in step.missing)}")
                continue
            if isinstance(step, ScoreStep):
                run_dir, reused = run_score_step(step, root, out, device)
                typer.echo(f"step {number}: {'reused complete run' if reused else 'run'} {run_dir}")
                comparisons.extend(compare_run(step, run_dir))
            else:
                comparisons.extend(compare_efficiency(step))
                typer.echo(f"step {number}: counted {step.method} from its architecture")
        typer.echo("published vs reproduced:")
        typer.echo("table\tmethod\tbenchmark\tmetric\tunit\tpublished\treproduced\tdifference\ttolerance\tverdict")
        for c in comparisons:
            diff = None if c.reproduced is None else c.reproduced - c.published
            typer.echo(f"{c.table}\t{c.label}\t{c.benchmark}\t{c.metric}\t{c.unit or '-'}\t{_fmt(c.published)}\t"
                       f"{_fmt(c.reproduced)}\t{_fmt(diff)}\t{_fmt(c.tolerance)}\t{c.verdict}")
        skipped = sum(1 for s in plan.steps if s.missing)
        typer.echo(f"{len(comparisons)} row(s) compared; {skipped} step(s) skipped for missing pieces", err=True)
