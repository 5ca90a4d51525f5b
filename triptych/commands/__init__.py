"""CLI sub-commands: each module defines ``register(app)``; the CLI discovers them all, so a task adds a
command by adding a module here, without editing a shared file."""

from types import SimpleNamespace

import typer

# The bootstrap settings shared by every command that computes intervals (score, compare, generate).
interval_options = SimpleNamespace(
    level=typer.Option(0.95, "--ci-level", help="confidence level of the intervals"),
    method=typer.Option("percentile", "--ci-method", help="bootstrap interval: percentile or BCa"),
    resamples=typer.Option(2000, "--ci-resamples", help="bootstrap resamples (and permutations)"),
    seed=typer.Option(0, "--ci-seed", help="seed of the bootstrap (run.json records it)"),
)

# The progress display of the commands that score samples (score, demo, measure): triptych.progress.
progress_options = SimpleNamespace(
    progress=typer.Option(False, "--progress", help="show progress (samples done / total, rate, ETA, current "
                          "sample) even when stderr is not a terminal: one line per sample"),
    quiet=typer.Option(False, "--quiet", help="no progress display"),
)

# The thread policy of the commands that score (score, measure): triptych.threads.
threads_option = typer.Option(None, "--threads", help="cores to score with (default: the CPUs this process may "
                              "run on); several worker processes use one thread each (README 'Speed and memory')")
