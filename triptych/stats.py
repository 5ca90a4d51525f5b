"""How sure a number is: seeded bootstrap intervals and paired comparisons that respect the sampling unit.

A benchmark declares its *sampling unit* as data (``sampling_unit`` in its spec): the independent thing the
protocol draws — a video for video completion (its frames are not independent draws: they share the scene,
the mask and the motion), an identity for personalization, a triplet for frame interpolation. Resampling
frames instead of videos treats 24 correlated frames of one video as 24 independent draws, and the interval
comes out far too narrow (``docs/statistics.md``).

The published aggregate is a pooled mean over samples (all frames of all videos), so the statistic over
units is a ratio estimator: each unit contributes (sum of its values, its count) and a resample of units
gives ``sum(sums) / sum(counts)``. This reduction lets ``scipy.stats.bootstrap`` (``paired=True`` over the
two arrays) do the clustered resampling, and ``scipy.stats.permutation_test`` (``permutation_type='samples'``:
swapping the two runs inside a unit is a sign flip of the unit's difference) the paired test. With one
sample per unit both reduce to the ordinary bootstrap and sign-flip test.

Everything here is a pure function of arrays and settings; ``triptych.scoring``, ``triptych.compare``,
the gate and the leaderboard call it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from triptych.errors import TriptychError

METHODS = ("percentile", "BCa")


def _scipy() -> Any:
    """scipy.stats, imported when an interval is computed (the registry imports this module at start-up)."""
    from scipy import stats

    return stats


@dataclass(frozen=True)
class SamplingUnit:
    """What a benchmark resamples: ``depth`` leading ``/``-parts of a sample id name its unit
    (``tennis/00003`` with depth 1 -> ``tennis``); ``depth`` None: each sample is its own unit."""

    name: str = "sample"
    depth: int | None = None

    def of(self, sample_id: str) -> str:
        return sample_id if self.depth is None else "/".join(sample_id.split("/")[: self.depth])

    @classmethod
    def from_spec(cls, entry: Any, where: str) -> "SamplingUnit":
        if entry is None:
            return cls()
        if not isinstance(entry, dict) or set(entry) - {"name", "depth"} or "name" not in entry:
            raise TriptychError(f"{where}: sampling_unit must be {{name: NAME, depth: N or null}}",
                                fix="e.g. 'sampling_unit: {name: video, depth: 1}' (the first part of the sample id)")
        depth = entry.get("depth")
        if depth is not None and (not isinstance(depth, int) or depth < 1):
            raise TriptychError(f"{where}: sampling_unit depth must be a positive integer or null, not {depth!r}")
        return cls(str(entry["name"]), depth)


@dataclass(frozen=True)
class IntervalSettings:
    """How intervals are computed; recorded in ``run.json`` (``statistics``) so every interval can be redone."""

    level: float = 0.95
    method: str = "percentile"
    resamples: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise TriptychError(f"interval method {self.method!r} is not one of {', '.join(METHODS)}",
                                fix="use --ci-method percentile or --ci-method BCa")
        if not 0 < self.level < 1:
            raise TriptychError(f"confidence level {self.level!r} is not between 0 and 1", fix="e.g. 0.95")
        if self.resamples < 100:
            raise TriptychError(f"{self.resamples} resamples are too few for an interval", fix="use 1000 or more")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Units:
    """Per-unit sufficient statistics of a pooled mean: unit names (sorted), sums and counts."""

    names: tuple[str, ...]
    sums: np.ndarray
    counts: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.sums.sum() / self.counts.sum())


def units_of(sample_ids: Sequence[str], values: Sequence[float], unit: SamplingUnit) -> Units:
    """Group per-sample values by sampling unit (sorted by name, so a result never depends on row order)."""
    groups: dict[str, list[float]] = {}
    for sample_id, value in zip(sample_ids, values):
        groups.setdefault(unit.of(str(sample_id)), []).append(float(value))
    names = tuple(sorted(groups))
    return Units(names, np.array([math.fsum(groups[n]) for n in names]), np.array([len(groups[n]) for n in names],
                                                                                     dtype=float))


def _ratio(sums: np.ndarray, counts: np.ndarray, axis: int = -1) -> np.ndarray:
    return sums.sum(axis=axis) / counts.sum(axis=axis)


def _no_interval(units: Units, unit: SamplingUnit, settings: IntervalSettings, note: str) -> dict[str, Any]:
    return {"low": None, "high": None, **settings.to_json(), "unit": unit.name, "units": len(units.names),
            "note": note}


def _why_not(units: Units, unit: SamplingUnit) -> str | None:
    if not np.isfinite(units.sums).all():
        return "a value is not finite (e.g. inf PSNR of identical frames), so the mean has no interval"
    if len(units.names) < 2:
        return (f"{len(units.names)} {unit.name}: an interval over {unit.name}s needs at least 2; the samples "
                f"of one {unit.name} are not independent draws")
    return None


def _constant(units: Units) -> bool:
    """Every unit has the same mean, to float rounding (scipy's BCa is undefined there)."""
    means = units.sums / units.counts
    return bool(np.allclose(means, means[0], rtol=1e-12, atol=1e-12))


def _bootstrap(units: Units, settings: IntervalSettings) -> Any:
    """scipy's bootstrap of the ratio estimator over units (sums and counts resampled together)."""
    sps = _scipy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", sps.DegenerateDataWarning)
        return sps.bootstrap((units.sums, units.counts), _ratio, paired=True, vectorized=True,
                             confidence_level=settings.level, n_resamples=settings.resamples,
                             method=settings.method, random_state=np.random.default_rng(settings.seed))


def mean_interval(units: Units, unit: SamplingUnit, settings: IntervalSettings) -> dict[str, Any]:
    """The interval of a pooled mean, resampling units; ``low``/``high`` are None with a ``note`` saying why
    when it cannot be computed (fewer than 2 units, a non-finite value)."""
    sps = _scipy()
    note = _why_not(units, unit)
    if note:
        return _no_interval(units, unit, settings, note)
    base = {**settings.to_json(), "unit": unit.name, "units": len(units.names)}
    if _constant(units):  # every resample gives the same mean (to rounding): the interval is that point
        return {"low": float((units.sums / units.counts).min()), "high": float((units.sums / units.counts).max()),
                **base}
    try:
        result = _bootstrap(units, settings)
    except sps.DegenerateDataWarning as exc:
        return _no_interval(units, unit, settings, f"{settings.method} interval is degenerate here ({exc}); "
                                                   "use the percentile method")
    return {"low": float(result.confidence_interval.low), "high": float(result.confidence_interval.high), **base}


@dataclass(frozen=True)
class PairedDifference:
    """B - A of the pooled means over the same samples: the difference, its interval, the permutation
    p-value, and the bootstrap distribution of the difference (for the gate's probability)."""

    difference: float
    interval: dict[str, Any]
    p_value: float | None
    permutations: int
    distribution: np.ndarray | None

    def probability_worse(self, direction: str, allowed: float) -> float | None:
        """P(B is worse than A by more than ``allowed`` in the metric's direction), over the bootstrap."""
        if self.distribution is None:
            return None
        sign = 1.0 if direction == "higher" else -1.0
        return float(np.mean(sign * self.distribution < -allowed))


def paired_difference(sample_ids: Sequence[str], a: Sequence[float], b: Sequence[float], unit: SamplingUnit,
                      settings: IntervalSettings) -> PairedDifference:
    """Compare two runs sample by sample (``a[i]`` and ``b[i]`` measure the same ``sample_ids[i]``)."""
    sps = _scipy()
    ua, ub = units_of(sample_ids, a, unit), units_of(sample_ids, b, unit)
    diff = Units(ua.names, ub.sums - ua.sums, ua.counts)
    if not (np.isfinite(ua.sums).all() and np.isfinite(ub.sums).all()):
        return PairedDifference(math.nan, _no_interval(diff, unit, settings, _why_not(ua, unit)
                                                       or "a value is not finite"), None, 0, None)
    difference = diff.mean
    note = _why_not(diff, unit)
    if note:
        return PairedDifference(difference, _no_interval(diff, unit, settings, note), None, 0, None)
    base = {**settings.to_json(), "unit": unit.name, "units": len(diff.names)}
    if _constant(diff):
        means = diff.sums / diff.counts
        interval = {"low": float(means.min()), "high": float(means.max()), **base}
        distribution = np.full(settings.resamples, difference)
    else:
        try:
            result = _bootstrap(diff, settings)
        except sps.DegenerateDataWarning as exc:
            return PairedDifference(difference, _no_interval(diff, unit, settings, f"degenerate ({exc})"), None, 0,
                                    None)
        interval = {"low": float(result.confidence_interval.low), "high": float(result.confidence_interval.high),
                    **base}
        distribution = result.bootstrap_distribution
    total = float(ua.counts.sum())

    def statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return (y.sum(axis=axis) - x.sum(axis=axis)) / total

    exact = 2 ** len(diff.names)
    test = sps.permutation_test((ua.sums, ub.sums), statistic, permutation_type="samples", vectorized=True,
                                n_resamples=settings.resamples, random_state=np.random.default_rng(settings.seed))
    return PairedDifference(difference, interval, float(test.pvalue), min(exact, settings.resamples), distribution)


def minimum_detectable_difference(sample_ids: Sequence[str], a: Sequence[float], b: Sequence[float],
                                  unit: SamplingUnit, alpha: float = 0.05, power: float = 0.8) -> dict[str, Any]:
    """The smallest paired difference of pooled means that a two-sided test at ``alpha`` detects with
    ``power``, from the unit-level variance of the observed differences (ratio-estimator linearisation:
    residual ``e_u = D_u - d n_u``, variance ``k/(k-1) sum e_u^2 / N^2``), on a benchmark of this size."""
    sps = _scipy()
    ua, ub = units_of(sample_ids, a, unit), units_of(sample_ids, b, unit)
    sums, counts = ub.sums - ua.sums, ua.counts
    k = len(counts)
    if k < 2 or not np.isfinite(sums).all():
        raise TriptychError(f"{k} {unit.name}(s) with finite differences: the variance of differences needs at "
                            "least 2", fix="score both runs on a benchmark with more units")
    d = sums.sum() / counts.sum()
    residual = sums - d * counts
    se = math.sqrt(k / (k - 1) * float(np.sum(residual ** 2))) / float(counts.sum())
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    return {"difference": float(d), "standard_error": se, "minimum_detectable": float(z * se), "alpha": alpha,
            "power": power, "unit": unit.name, "units": k, "samples": int(counts.sum())}


def count_of(n: int, unit: str) -> str:
    """``5 triplets``, ``1 video``, ``2 identities``."""
    plural = unit[:-1] + "ies" if unit.endswith("y") else unit + "s"
    return f"{n} {unit if n == 1 else plural}"


def describe_interval(interval: dict[str, Any] | None, digits: int = 6) -> str:
    """One line for a terminal or a table cell: ``95% CI [32.1, 33.4] over 5 triplets``, or why there is none."""
    if not interval:
        return "no interval recorded"
    units = count_of(interval["units"], interval["unit"])
    if interval.get("low") is None:
        return f"no interval ({interval.get('note') or units})"
    level = f"{float(interval['level']) * 100:g}%"
    return f"{level} CI [{interval['low']:.{digits}g}, {interval['high']:.{digits}g}] over {units}"


def describe_spread(spread: dict[str, Any], digits: int = 4) -> str:
    """``across 3 seeds: sd 0.012 [30.1, 30.2]`` (``across_seeds``)."""
    sd = "n/a" if spread.get("sd") is None else f"{spread['sd']:.{digits}g}"
    return f"across {spread['seeds']} seeds: sd {sd} [{spread['min']:.6g}, {spread['max']:.6g}]"


def rank_intervals(values: Sequence[float], lows: Sequence[float | None], highs: Sequence[float | None],
                   direction: str) -> list[tuple[int, int]]:
    """Rank ranges of methods on one metric: a method's best rank counts only the methods whose whole interval
    is better than its own, its worst rank excludes those whose whole interval is worse; overlapping intervals
    tie. A method without an interval is its point value (both ends)."""
    sign = 1.0 if direction == "higher" else -1.0
    ends = [(sign * (lo if lo is not None else v), sign * (hi if hi is not None else v))
            for v, lo, hi in zip(values, lows, highs)]
    ends = [(min(e), max(e)) for e in ends]  # (worse end, better end) in "higher is better" terms
    out = []
    for i, (low_i, high_i) in enumerate(ends):
        surely_better = sum(1 for j, (low_j, _) in enumerate(ends) if j != i and low_j > high_i)
        surely_worse = sum(1 for j, (_, high_j) in enumerate(ends) if j != i and high_j < low_i)
        out.append((1 + surely_better, len(ends) - surely_worse))
    return out


def across_seeds(values: Sequence[float]) -> dict[str, Any]:
    """The spread of one aggregate over seed replicates: n, mean, sample sd (ddof 1), min, max."""
    array = np.asarray(values, dtype=float)
    return {"seeds": int(array.size), "mean": float(array.mean()),
            "sd": float(array.std(ddof=1)) if array.size > 1 else None,
            "min": float(array.min()), "max": float(array.max())}


SET_RESAMPLES = 200  # a set metric is recomputed per resample (an eigen-decomposition for FID): at most this many


def set_interval(statistic: Any, real: np.ndarray, generated: np.ndarray, generated_ids: Sequence[str],
                 unit: SamplingUnit, settings: IntervalSettings) -> dict[str, Any]:
    """Percentile interval of a set metric (FID, KID): resample the generated images by sampling unit (all
    images of each drawn identity), recompute ``statistic(real, generated[rows])`` from the cached features
    (never the encoder), with the reference set fixed: the spread due to which units were generated."""
    groups: dict[str, list[int]] = {}
    for row, sample_id in enumerate(generated_ids):
        groups.setdefault(unit.of(str(sample_id)), []).append(row)
    names = sorted(groups)
    resamples = min(settings.resamples, SET_RESAMPLES)
    base = {**settings.to_json(), "method": "percentile", "resamples": resamples, "unit": unit.name,
            "units": len(names)}
    if len(names) < 2:
        return {"low": None, "high": None, **base,
                "note": f"{count_of(len(names), unit.name)}: an interval over {unit.name}s needs at least 2"}
    rng = np.random.default_rng(settings.seed)
    values = []
    for _ in range(resamples):
        rows = np.concatenate([groups[names[i]] for i in rng.integers(0, len(names), len(names))])
        values.append(float(statistic(real, generated[rows])))
    tail = (1 - settings.level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return {"low": float(low), "high": float(high), **base,
            "note": f"set metric: {resamples} resamples of the generated {unit.name}s from cached features, "
                    "percentile, the reference set fixed"}
