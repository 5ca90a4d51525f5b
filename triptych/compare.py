"""``triptych compare RUN_A RUN_B``: the paired difference B - A of two runs on the same samples, per metric.

Both runs must be of one benchmark, benchmark variant and data manifest, and must hold exactly the same
sample ids for a metric: a comparison over different samples is refused, naming the samples. The
difference, its bootstrap interval and the permutation-test p-value resample the benchmark's sampling unit
(``triptych.stats``): videos, identities or triplets, never frames of one video as if independent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from triptych.errors import TriptychError
from triptych.registry import registry
from triptych.results import read_run, read_samples
from triptych.stats import IntervalSettings, PairedDifference, SamplingUnit, paired_difference

SHOWN = 5  # sample ids named in an error


@dataclass(frozen=True)
class RunData:
    """A run's JSON and per-sample rows, read once."""

    run_dir: Path
    run: dict[str, Any]
    samples: pd.DataFrame

    @classmethod
    def read(cls, run_dir: str | Path) -> "RunData":
        run_dir = Path(run_dir)
        run = read_run(run_dir)
        if run.get("status") != "complete":
            raise TriptychError(f"{run_dir}: run is {run.get('status')!r}, not complete",
                                fix="finish it (run the same 'triptych score' command again) before comparing")
        return cls(run_dir, run, read_samples(run_dir))

    @property
    def label(self) -> str:
        return str(self.run.get("run_id", self.run_dir.name))

    def values(self, metric: str, variant: str, version: int) -> pd.Series:
        rows = self.samples[(self.samples.metric == metric) & (self.samples.metric_variant == variant)
                            & (self.samples.metric_version == version)]
        return rows.set_index("sample_id")["value"].astype(float)


def sampling_unit(run: dict[str, Any]) -> SamplingUnit:
    """The unit the run's intervals resampled (run.json ``statistics``), else its benchmark spec's."""
    recorded = (run.get("statistics") or {}).get("sampling_unit")
    if recorded:
        return SamplingUnit(recorded["name"], recorded.get("depth"))
    return registry().benchmark(_benchmark_name(run)).sampling_unit


def _same(a: RunData, b: RunData, what: str, get: Any) -> None:
    va, vb = get(a.run), get(b.run)
    if va != vb:
        raise TriptychError(f"runs {a.label} and {b.label} differ in {what} ({va!r} vs {vb!r}): a paired "
                            "comparison needs the same samples of the same data", fix="compare runs of one benchmark")


def _names(ids: set[str]) -> str:
    shown = sorted(ids)[:SHOWN]
    return ", ".join(shown) + (f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else "")


def check_same_samples(a: pd.Series, b: pd.Series, label_a: str, label_b: str, metric: str) -> None:
    """Refuse two runs whose sample sets differ for ``metric``, naming the samples on each side."""
    only_a, only_b = set(a.index) - set(b.index), set(b.index) - set(a.index)
    if only_a or only_b:
        sides = [f"only in {label}: {_names(ids)}" for label, ids in ((label_a, only_a), (label_b, only_b)) if ids]
        raise TriptychError(f"{metric}: the runs hold different samples ({'; '.join(sides)})",
                            fix="score both on the same benchmark selection; a paired comparison needs every "
                                "sample in both runs")
    duplicated = sorted(set(a.index[a.index.duplicated()]) | set(b.index[b.index.duplicated()]))
    if duplicated:
        raise TriptychError(f"{metric}: sample(s) {_names(set(duplicated))} appear twice in one run",
                            fix="re-score the run")


def paired_rows(a: RunData, b: RunData, settings: IntervalSettings) -> list[tuple[dict[str, Any], PairedDifference]]:
    """Per metric variant scored by both runs: its description and the paired difference B - A."""
    _same(a, b, "benchmark", lambda r: (r.get("benchmark"), r.get("split")))
    _same(a, b, "benchmark variant", lambda r: r.get("benchmark_variant"))
    _same(a, b, "data manifest", lambda r: (r.get("data") or {}).get("manifest_sha256"))
    unit = sampling_unit(a.run)
    metrics_b = {(m["metric"], m["variant"], m["version"]) for m in b.run.get("metrics") or []}
    shared = [m for m in a.run.get("metrics") or [] if (m["metric"], m["variant"], m["version"]) in metrics_b]
    if not shared:
        raise TriptychError(f"runs {a.label} and {b.label} share no metric variant and version",
                            fix="score both with the same metrics")
    out = []
    for m in shared:
        name = f"{m['metric']}:{m['variant']} v{m['version']}"
        va, vb = a.values(m["metric"], m["variant"], m["version"]), b.values(m["metric"], m["variant"], m["version"])
        check_same_samples(va, vb, a.label, b.label, name)
        ids = sorted(va.index)
        diff = paired_difference(ids, va[ids].to_numpy(), vb[ids].to_numpy(), unit, settings)
        out.append(({"metric": m["metric"], "metric_variant": m["variant"], "metric_version": m["version"],
                     "direction": m["direction"], "unit": m["unit"], "a": float(va.mean()), "b": float(vb.mean()),
                     "n": len(ids)}, diff))
    return out


def compare_runs(run_a: str | Path, run_b: str | Path, settings: IntervalSettings | None = None) -> pd.DataFrame:
    """One row per shared metric variant: means of A and B, ``difference`` (B - A), ``ci_low``/``ci_high``
    (bootstrap over the sampling unit), ``p_value`` (paired permutation test), ``better`` (which run is better
    at the interval's level, or "neither")."""
    settings = settings or IntervalSettings()
    rows = []
    for info, diff in paired_rows(RunData.read(run_a), RunData.read(run_b), settings):
        interval = diff.interval
        rows.append({**info, "difference": diff.difference, "ci_low": interval["low"], "ci_high": interval["high"],
                     "ci_level": interval["level"], "ci_unit": interval["unit"], "ci_units": interval["units"],
                     "ci_note": interval.get("note"), "p_value": diff.p_value, "permutations": diff.permutations,
                     "better": _better(info["direction"], interval), "method": interval["method"],
                     "resamples": interval["resamples"], "seed": interval["seed"]})
    return pd.DataFrame(rows)


def _better(direction: str, interval: dict[str, Any]) -> str:
    """"B" or "A" when the whole interval of B - A lies on one side of 0, else "neither"."""
    low, high = interval["low"], interval["high"]
    if low is None or (isinstance(low, float) and math.isnan(low)):
        return "unknown"
    sign = 1.0 if direction == "higher" else -1.0
    ends = sorted((sign * low, sign * high))
    return "B" if ends[0] > 0 else "A" if ends[1] < 0 else "neither"


def _benchmark_name(run: dict[str, Any]) -> str:
    """The registry name of the run's benchmark (``snu-film/easy``), as requested."""
    return str((run.get("request") or {}).get("benchmark") or run.get("benchmark"))


def detectable_differences(results: str | Path, benchmark: str, metric: str, alpha: float = 0.05,
                           power: float = 0.8) -> pd.DataFrame:
    """For every pair of complete runs of ``benchmark`` in ``results`` that scored ``metric`` (``name`` or
    ``name:variant``) on the same samples: the smallest paired difference a two-sided test at ``alpha``
    detects with ``power`` (``triptych.stats.minimum_detectable_difference``), from the variance of the
    pair's per-unit differences."""
    from itertools import combinations

    from triptych.results import list_runs
    from triptych.stats import minimum_detectable_difference

    name, _, variant = metric.partition(":")
    runs = [RunData.read(Path(results) / r["run_id"]) for r in list_runs(results)
            if r.get("status") == "complete" and _benchmark_name(r) == benchmark]
    found = {(m["metric"], m["variant"], m["version"]) for run in runs for m in run.run.get("metrics") or []
             if m["metric"] == name and (not variant or m["variant"] == variant)}
    if len(found) != 1:
        raise TriptychError(f"{results}: {len(found)} variant(s) of {metric!r} scored on {benchmark!r} "
                            f"({', '.join(f'{m}:{v} v{n}' for m, v, n in sorted(found)) or 'none'})",
                            fix="name one metric variant (--metric psnr:amt) scored by two runs of the benchmark")
    key = found.pop()
    runs = sorted((r for r in runs if any((m["metric"], m["variant"], m["version"]) == key
                                          for m in r.run.get("metrics") or [])), key=lambda r: r.label)
    if len(runs) < 2:
        raise TriptychError(f"{results}: {len(runs)} run of {benchmark!r} scored {metric!r}; the variance of "
                            "paired differences needs two", fix="score a second method, or a re-run with another "
                                                                "seed, on the same benchmark")
    unit = sampling_unit(runs[0].run)
    rows = []
    for a, b in combinations(runs, 2):
        va, vb = a.values(*key), b.values(*key)
        check_same_samples(va, vb, a.label, b.label, f"{key[0]}:{key[1]}")
        ids = sorted(va.index)
        rows.append({"run_a": a.label, "method_a": a.run.get("method"), "run_b": b.label,
                     "method_b": b.run.get("method"), "metric": key[0], "metric_variant": key[1],
                     **minimum_detectable_difference(ids, va[ids].to_numpy(), vb[ids].to_numpy(), unit, alpha, power)})
    return pd.DataFrame(rows)
