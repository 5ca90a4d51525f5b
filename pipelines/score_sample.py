"""DVC stage ``score_sample``: score (benchmark, method) pairs into one results folder, as ``triptych demo`` does.

Each pair goes through ``triptych.scoring.score``, the machinery of ``triptych score`` (manifest check,
per-sample parts, run JSON with provenance). ``--runs demo`` scores the demo's pairs
(``triptych.task_list.DEMO_RUNS``, from ``triptych/data/tasks.yaml``: the simple baselines of all three tasks
on the embedded sample);
otherwise ``--runs`` lists ``benchmark:method`` pairs separated by commas.

``--scored`` records what was scored and nothing that depends on the machine (no run id, time, value or
path): per run its benchmark, split, variant, method and version, data manifest sha256, and each metric
variant and version with its sample count. It is the stage's one output in ``dvc.lock``; the results folder
(run ids, timings, provenance of this machine) is not, so ``dvc repro`` leaves a fresh clone clean.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from triptych.errors import TriptychError
from triptych.pipelines.stage_io import run_stage, timed, write_json
from triptych.results import read_run
from triptych.scoring import score
from triptych.task_list import DEMO_RUNS


def parse_runs(text: str) -> list[tuple[str, str]]:
    """``demo`` or ``benchmark:method,benchmark:method`` -> pairs.

    >>> parse_runs("sample-triplets:linear_blend")
    [('sample-triplets', 'linear_blend')]
    """
    if text.strip() == "demo":
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


def scored_record(run: dict) -> dict:
    """The machine-independent part of a run JSON (see the module docstring)."""
    return {"benchmark": run["benchmark"], "split": run.get("split"), "benchmark_variant": run.get("benchmark_variant"),
            "method": run["method"], "method_version": run.get("method_version"),
            "manifest_sha256": run.get("data", {}).get("manifest_sha256"), "status": run["status"],
            "metrics": [{"metric": m["metric"], "variant": m.get("variant"), "version": m.get("version"),
                         "n": (m.get("aggregate") or {}).get("n")} for m in run.get("metrics", [])]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m triptych.pipelines.score_sample", description=__doc__)
    parser.add_argument("--runs", default="demo")
    parser.add_argument("--data-root", type=Path, default=Path("datasets"), help="folder of samples/ and manifests/")
    parser.add_argument("--out", type=Path, default=Path("datasets/build/results"))
    parser.add_argument("--scored", type=Path, default=None, help="JSON of what was scored (machine-independent)")
    parser.add_argument("--timing", type=Path, default=None)
    args = parser.parse_args(argv)
    scored = []
    with timed("score_sample", args.timing) as timing:
        for benchmark, method in parse_runs(args.runs):
            run_dir = score(benchmark, args.out, method=method, data_root=args.data_root)
            print(f"score_sample: {method} on {benchmark}: {run_dir}")
            scored.append(scored_record(read_run(run_dir)))
            timing.items += 1
        timing.computed = timing.items
    if args.scored is not None:
        write_json(args.scored, {"runs": scored})


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
