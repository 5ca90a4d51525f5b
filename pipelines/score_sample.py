"""DVC stage ``score_sample``: score (benchmark, method) pairs into one results folder, as ``triptych demo`` does.

Each pair goes through ``triptych.scoring.score``, the machinery of ``triptych score`` (manifest check,
per-sample parts, run JSON with provenance). ``--runs demo`` scores the demo's pairs
(``triptych.commands.demo.DEMO_RUNS``: the simple baselines of all three tasks on the embedded sample);
otherwise ``--runs`` lists ``benchmark:method`` pairs separated by commas.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from triptych.errors import TriptychError
from triptych.pipelines.stage_io import run_stage, timed
from triptych.scoring import score


def parse_runs(text: str) -> list[tuple[str, str]]:
    """``demo`` or ``benchmark:method,benchmark:method`` -> pairs.

    >>> parse_runs("sample-triplets:linear_blend")
    [('sample-triplets', 'linear_blend')]
    """
    if text.strip() == "demo":
        from triptych.commands.demo import DEMO_RUNS

        return list(DEMO_RUNS)
    pairs = []
    for item in (p.strip() for p in text.split(",") if p.strip()):
        benchmark, sep, method = item.partition(":")
        if not sep or not benchmark or not method:
            raise TriptychError(f"--runs item {item!r} is not benchmark:method", fix="e.g. sample-tennis:mean_fill")
        pairs.append((benchmark, method))
    if not pairs:
        raise TriptychError("--runs lists no run", fix="pass demo, or benchmark:method pairs")
    return pairs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m triptych.pipelines.score_sample", description=__doc__)
    parser.add_argument("--runs", default="demo")
    parser.add_argument("--data-root", type=Path, default=Path("datasets"), help="folder of samples/ and manifests/")
    parser.add_argument("--out", type=Path, default=Path("datasets/build/results"))
    parser.add_argument("--timing", type=Path, default=None)
    args = parser.parse_args(argv)
    with timed("score_sample", args.timing) as timing:
        for benchmark, method in parse_runs(args.runs):
            run_dir = score(benchmark, args.out, method=method, data_root=args.data_root)
            print(f"score_sample: {method} on {benchmark}: {run_dir}")
            timing.items += 1
        timing.computed = timing.items


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
