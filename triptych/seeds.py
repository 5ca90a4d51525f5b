"""Seed replicates: score (or generate) a stochastic method under several seeds per protocol image.

Replicate ``r`` of base seed ``b`` uses base seed ``b + r * SEED_STRIDE``, so no image seed of one
replicate is an image seed of another: the protocol's rule ``base + (i*P + p)*K + k`` stays below the stride
(i < 25 + 2^20, P = 40, K = 4: under 1.7e8 < 2^28). Every seed stays below 2^32, because torch's CPU
generator keeps only the low 32 bits of a seed (a stride of 2^32 gives every replicate the same images).
Each replicate is one ordinary run; once all are scored, every run's aggregates get
``across_seeds`` (n, mean, sd, min, max over the replicates' aggregates, and their run ids) beside the
bootstrap interval, which measures the spread over samples within one seed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from triptych.atomic import atomic_write_text
from triptych.errors import TriptychError
from triptych.registry import registry
from triptych.results import RUN_FILE, json_safe, read_run
from triptych.stats import across_seeds

SEED_STRIDE = 2 ** 28 + 1  # odd: replicates also differ in parity
SEED_LIMIT = 2 ** 32
SEED_FOLDER = "seed-{seed}"  # a replicate's images under the output (generate) or prediction (score) folder


def replicate_seeds(base: int, n: int) -> list[int]:
    if n < 1:
        raise TriptychError(f"--seeds {n}: at least 1 seed", fix="e.g. --seeds 3")
    seeds = [base + r * SEED_STRIDE for r in range(n)]
    if base < 0 or seeds[-1] + SEED_STRIDE > SEED_LIMIT:
        most = (SEED_LIMIT - base) // SEED_STRIDE - 1
        raise TriptychError(f"--seeds {n} from base seed {base}: the last replicate's seeds would pass 2^32, where "
                            "torch's CPU generator wraps around", fix=f"use at most {max(most, 0)} seeds, or a "
                                                                      "smaller base seed")
    return seeds


def base_seed(benchmark: str, variant: str | None, params: dict[str, str]) -> int:
    """The base seed of a benchmark whose variant declares a ``seed`` parameter (else seeds cannot vary)."""
    spec = registry().benchmark(benchmark)
    variant_name, variant_params = spec.variant(variant)
    if "seed" not in variant_params:
        raise TriptychError(f"benchmark {benchmark!r} (variant {variant_name!r}) has no seed parameter, so its "
                            "method gets no seed to vary", fix="leave out --seeds, or use a benchmark whose variant "
                                                               "declares 'seed' (triptych list benchmarks)")
    try:
        return int(params.get("seed", variant_params["seed"]))
    except (TypeError, ValueError) as exc:
        raise TriptychError(f"benchmark {benchmark!r}: seed {params.get('seed', variant_params['seed'])!r} is not "
                            "an integer", fix="pass --param seed=N") from exc


def score_seeds(benchmark: str, out: Path, seeds: int, *, params: dict[str, str] | None = None,
                pred_dir: Path | None = None, benchmark_variant: str | None = None, **kwargs: Any) -> list[Path]:
    """One run per seed replicate (with ``pred_dir``, replicate seed ``s`` reads ``pred_dir/seed-<s>``), then
    the across-seed spread recorded in every replicate's run.json; returns the run folders."""
    from triptych.scoring import score

    params = dict(params or {})
    runs = []
    for seed in replicate_seeds(base_seed(benchmark, benchmark_variant, params), seeds):
        runs.append(score(benchmark, out, pred_dir=pred_dir / SEED_FOLDER.format(seed=seed) if pred_dir else None,
                          benchmark_variant=benchmark_variant, params={**params, "seed": str(seed)}, **kwargs))
    record_spread(runs)
    return runs


def record_spread(run_dirs: list[Path]) -> None:
    """Add ``across_seeds`` to each metric aggregate of every replicate run (same metrics in all of them)."""
    runs = [read_run(d) for d in run_dirs]
    ids = [r["run_id"] for r in runs]
    for run_dir, run in zip(run_dirs, runs):
        for m in run["metrics"]:
            values = [float(next(o["aggregate"]["value"] for o in other["metrics"]
                                 if (o["metric"], o["variant"]) == (m["metric"], m["variant"]))) for other in runs]
            m["aggregate"]["across_seeds"] = {**across_seeds(values), "runs": ids}
        run["seed_replicates"] = {"stride": SEED_STRIDE, "runs": ids}
        atomic_write_text(Path(run_dir) / RUN_FILE, json.dumps(json_safe(run), indent=2, sort_keys=True))
