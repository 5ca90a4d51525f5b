"""The Python API: ``triptych.evaluate(benchmark=..., method=..., metrics=..., out=...)``.

``method`` is a registered name (``triptych list methods``, plugins included) or any object that
implements the benchmark task's protocol of ``triptych.methods`` (``Inpainter``, ``Interpolator``,
``Generator``: float32 tensors in [0, 1], RGB, channel-first, one sample per call). The call scores it
exactly as ``triptych score`` does and returns a ``Results`` over the run it wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from triptych.compare import compare_runs
from triptych.labels import method_label
from triptych.results import read_run, read_samples
from triptych.scoring import score
from triptych.stats import IntervalSettings


@dataclass(frozen=True)
class Results:
    """One scored run: per-sample rows, aggregates and provenance, pandas-friendly."""

    run_dir: Path

    @cached_property
    def run(self) -> dict[str, Any]:
        """The run JSON: provenance, versions, variants and aggregates."""
        return read_run(self.run_dir)

    @cached_property
    def samples(self) -> pd.DataFrame:
        """One row per measurement, in the results schema."""
        return read_samples(self.run_dir)

    def aggregates(self) -> pd.DataFrame:
        """One row per metric variant: value, reduction, n, unit, direction, version, and the bootstrap
        interval over the benchmark's sampling unit (``ci_low``, ``ci_high``, ``ci_level``, ``ci_unit``,
        ``ci_units``; None with ``ci_note`` when there is none); a seed replicate adds the across-seed spread
        (``seeds_seeds``, ``seeds_sd``, ``seeds_min``, ``seeds_max``)."""
        rows = []
        for m in self.run["metrics"]:
            aggregate = dict(m["aggregate"])
            interval = aggregate.pop("interval", None) or {}
            spread = aggregate.pop("across_seeds", None) or {}
            rows.append({"metric": m["metric"], "metric_variant": m["variant"], "metric_version": m["version"],
                         "unit": m["unit"], "direction": m["direction"], **aggregate,
                         **{f"ci_{k}": interval.get(k) for k in ("low", "high", "level", "unit", "units", "note")},
                         **{f"seeds_{k}": spread.get(k) for k in ("seeds", "sd", "min", "max") if spread}})
        return pd.DataFrame(rows)

    def _metric(self, metric: str) -> dict[str, Any]:
        name, _, variant = metric.partition(":")
        found = [m for m in self.run["metrics"] if m["metric"] == name and (not variant or m["variant"] == variant)]
        if len(found) != 1:
            raise KeyError(f"{metric!r}: scored metrics are "
                           f"{', '.join(m['metric'] + ':' + m['variant'] for m in self.run['metrics'])}")
        return found[0]

    def __getitem__(self, metric: str) -> float:
        """The aggregate of a metric (``"psnr"``, or ``"psnr:e2fgvi"`` when it was scored in several variants)."""
        return float(self._metric(metric)["aggregate"]["value"])

    def interval(self, metric: str) -> dict[str, Any]:
        """The aggregate's interval as recorded in run.json: low, high, level, method, resamples, seed, unit."""
        return dict(self._metric(metric)["aggregate"].get("interval") or {})

    def compare(self, other: "Results | str | Path", settings: IntervalSettings | None = None) -> pd.DataFrame:
        """The paired difference ``other - self`` per metric (``triptych compare``: interval over the sampling
        unit, permutation p-value); refuses runs whose sample sets differ."""
        return compare_runs(self.run_dir, other.run_dir if isinstance(other, Results) else other, settings)

    def to_pandas(self) -> pd.DataFrame:
        return self.samples


def evaluate(benchmark: str, method: Any = None, *, metrics: Sequence[str] | None = None,
             out: str | Path = "results", pred_dir: str | Path | None = None, name: str | None = None,
             benchmark_variant: str | None = None, data_root: str | Path | None = None, executor: str = "local",
             workers: int = 1, ray_address: str | None = None, fresh: bool = False,
             interval: IntervalSettings | None = None, method_version: str | None = None) -> Results:
    """Score ``method`` (a registered name or a method object) or ``pred_dir`` on ``benchmark``.

    ``metrics`` overrides the benchmark's metric set with ``"metric:variant"`` strings. A method object
    is recorded under ``name`` (default: its ``name`` attribute or class name) with its ``version``
    attribute, and is scored in this process; a ``pred_dir`` is recorded under ``name`` (default ``pred-dir``)
    and ``method_version``, as ``triptych score --pred-dir DIR --name NAME --method-version V`` records it
    (``triptych.labels``). As with ``triptych score``, the same call resumes an unfinished
    run of the same request (recomputing the parts whose inputs changed) or returns its complete, up-to-date
    run; ``fresh=True`` always scores a new run. ``interval`` sets the aggregates' bootstrap (level, method,
    resamples, seed; ``docs/statistics.md``).

    >>> import triptych, torch
    >>> class Copy:  # an Interpolator: returns the first frame
    ...     version = "0.1"
    ...     def interpolate(self, frame0, frame1, t): return frame0.clone()
    >>> results = triptych.evaluate("sample-triplets", Copy(), out=getfixture("tmp_path"))  # doctest: +SKIP
    """
    label, method_object = None, None
    if method is not None and not isinstance(method, str):
        label = method_label(None, name, in_process=True) if name else (getattr(method, "name", None)
                                                                        or type(method).__name__)
        method_object = method
    run_dir = score(benchmark, Path(out), method=label or method, name=None if label else name,
                    method_version=method_version, method_object=method_object,
                    pred_dir=Path(pred_dir) if pred_dir is not None else None, benchmark_variant=benchmark_variant,
                    data_root=Path(data_root) if data_root is not None else None, executor=executor,
                    workers=workers, ray_address=ray_address, metrics=metrics, fresh=fresh, interval=interval)
    return Results(run_dir)
