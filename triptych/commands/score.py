"""``triptych score --benchmark B (--method M [--weights FILE] | --pred-dir DIR [--name NAME]) --out DIR``"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from triptych.commands import interval_options, progress_options, threads_option


def register(app: typer.Typer) -> None:
    @app.command("score")
    def score_command(
        benchmark: str = typer.Option(..., "--benchmark", help="benchmark name (see 'triptych list benchmarks')"),
        out: Path = typer.Option(Path("results"), "--out", help="results folder; the run goes in OUT/<run_id>/"),
        method: Optional[str] = typer.Option(None, "--method", help="a registered method to run"),
        weights: Optional[Path] = typer.Option(None, "--weights", help="checkpoint file to run --method on "
                                               "instead of its registered weights (.safetensors or .pth)"),
        pred_dir: Optional[Path] = typer.Option(None, "--pred-dir", help="your method's outputs, in the "
                                                "benchmark's layout (README: 'Score a method on a benchmark'; "
                                                "docs/score_your_method.md)"),
        name: Optional[str] = typer.Option(None, "--name", help="the method label of --pred-dir outputs on the "
                                           "leaderboard, in the gate and the results (default: pred-dir; letters, "
                                           "digits, . _ -; not a registered method's name)"),
        method_version: Optional[str] = typer.Option(None, "--method-version", help="the version of the --pred-dir "
                                                     "method, recorded with its label"),
        benchmark_variant: Optional[str] = typer.Option(None, "--benchmark-variant", help="data preparation variant"),
        data_root: Optional[Path] = typer.Option(None, "--data-root", help="datasets folder (default: the "
                                                 "checkout's datasets/, or TRIPTYCH_DATASETS)"),
        executor: str = typer.Option("local", "--executor", help="local (this machine) or ray"),
        workers: int = typer.Option(1, "--workers", help="worker processes (local) or CPUs (local Ray instance)"),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", help="an existing Ray cluster, e.g. "
                                                  "ray://head:10001 (default: start a local one)"),
        refs: Optional[Path] = typer.Option(None, "--refs", help="reference photos, a folder per identity "
                                            "(personalization benchmarks; same as --param refs=DIR)"),
        param: list[str] = typer.Option([], "--param", help="KEY=VALUE: override a benchmark parameter that its "
                                        "variant declares (e.g. prompts=5); repeatable"),
        device: Optional[str] = typer.Option(None, "--device", help="cuda, cuda:1 or cpu for a method whose "
                                             "factory takes a device (default: the method's own)"),
        metric: list[str] = typer.Option([], "--metric", help="METRIC:VARIANT to score instead of the "
                                         "benchmark's metrics; repeatable"),
        fresh: bool = typer.Option(False, "--fresh", help="score a new run, even when an unfinished or complete "
                                   "run of the same request is in --out (by default it is resumed or reused)"),
        subset: bool = typer.Option(False, "--subset", help="score the reduced set the data holds (fewer videos "
                                    "or triplets than the published split): recorded as subset n/N in run.json "
                                    "and on the leaderboard, never paired with published rows (same as --param "
                                    "subset=true)"),
        ci_level: float = interval_options.level, ci_method: str = interval_options.method,
        ci_resamples: int = interval_options.resamples, ci_seed: int = interval_options.seed,
        seeds: int = typer.Option(1, "--seeds", help="seed replicates per protocol image (benchmarks with a seed "
                                  "parameter): one run each, with the across-seed spread in every run.json; with "
                                  "--pred-dir, replicate seed S is read from PRED_DIR/seed-S"),
        progress: bool = progress_options.progress, quiet: bool = progress_options.quiet,
        threads: Optional[int] = threads_option,
    ) -> None:
        """Score a method, or a folder of its outputs, on a benchmark; writes one run. Progress is shown on a
        terminal; Ctrl-C keeps the samples scored so far and prints the command that resumes the run."""
        from triptych.progress import set_mode

        set_mode(progress, quiet)
        from triptych.threads import check_threads, configure_scoring_process

        configure_scoring_process(check_threads(threads))  # this process's share; each worker process uses one
        from triptych.errors import TriptychError
        from triptych.results import read_run
        from triptych.scoring import score
        from triptych.stats import IntervalSettings, describe_interval, describe_spread

        params = {}
        for item in param:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise TriptychError(f"--param {item!r} is not KEY=VALUE", fix="e.g. --param prompts=5")
            params[key] = value
        if refs is not None:
            params["refs"] = str(refs.resolve())
        if subset:
            params["subset"] = "true"
        interval = IntervalSettings(ci_level, ci_method, ci_resamples, ci_seed)
        if seeds == 1:
            run_dirs = [score(benchmark, out, method, pred_dir, benchmark_variant, data_root, executor, workers,
                              ray_address, metric or None, params, weights, fresh, interval, device, name,
                              method_version)]
        else:
            from triptych.seeds import score_seeds

            run_dirs = score_seeds(benchmark, out, seeds, params=params, pred_dir=pred_dir,
                                   benchmark_variant=benchmark_variant, method=method, data_root=data_root,
                                   executor=executor, workers=workers, ray_address=ray_address,
                                   metrics=metric or None, weights=weights, interval=interval, fresh=fresh,
                                   device=device, name=name, method_version=method_version)
        for run_dir in run_dirs:
            run = read_run(run_dir)
            for m in run["metrics"]:
                agg = m["aggregate"]  # 'inf' is stored as a string
                spread = agg.get("across_seeds")
                typer.echo(f"{run['benchmark']}  {run['method']}  {m['metric']}:{m['variant']} v{m['version']}  "
                           f"{float(agg['value']):.6g} {m['unit']}  (n={agg['n']})  "
                           f"{describe_interval(agg.get('interval'))}"
                           + (f"  {describe_spread(spread)}" if spread else ""))
                for flag, raised in (m.get("flagged") or {}).items():
                    typer.echo(f"flagged: {m['metric']}:{m['variant']} {flag} on {raised['count']} of {agg['n']} "
                               "sample(s), scored 0 (run.json: metrics[].flagged)", err=True)
            reduced = (run.get("data") or {}).get("subset")
            if reduced:
                typer.echo(f"subset {reduced['count']}/{reduced['of']} {reduced['unit']} of split {run['split']!r}: "
                           "never paired with published rows", err=True)
            typer.echo(f"run: {run_dir}", err=True)
