"""``triptych measure``: one metric variant over a user's own prediction and ground-truth files.

The metric's ``kind`` (in its registry entry) says how inputs are fed to it; each kind is one function
here. The result is one JSON document of the shape in ``conventions.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from triptych.errors import InputError, TriptychError
from triptych.media import check_same_size, pair_paths, read_prediction, read_rgb
from triptych.metrics.aggregate import SampleMean
from triptych.registry import MetricSpec, VariantSpec, registry
from triptych.results import SCHEMA_VERSION, json_safe


@dataclass(frozen=True)
class MeasureInputs:
    pred: Path
    gt: Path
    mask: Path | None = None
    weights: Path | None = None
    flow_dir: Path | None = None
    clip_len: int | None = None
    clip_stride: int | None = None

    def given_options(self) -> dict[str, Any]:
        names = {"mask": "--mask", "weights": "--weights", "flow_dir": "--flow-dir", "clip_len": "--clip-len",
                 "clip_stride": "--clip-stride"}
        return {flag: getattr(self, attr) for attr, flag in names.items() if getattr(self, attr) is not None}


@dataclass
class Measurement:
    metric: MetricSpec
    variant: VariantSpec
    inputs: MeasureInputs
    per_sample: list[tuple[str, float]] = field(default_factory=list)
    aggregate: SampleMean = field(default_factory=SampleMean)
    weights: dict[str, Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """The ``triptych measure --json`` document (conventions.md)."""
        return json_safe({
            "schema_version": SCHEMA_VERSION,
            "metric": self.metric.name,
            "metric_variant": self.variant.name,
            "metric_version": self.variant.version,
            "weights": self.weights,
            "inputs": {"pred": str(self.inputs.pred), "gt": str(self.inputs.gt),
                       **{k.lstrip("-").replace("-", "_"): str(v) for k, v in self.inputs.given_options().items()}},
            "per_sample": [{"sample_id": sid, "value": value} for sid, value in self.per_sample],
            "aggregate": {"value": self.aggregate.compute(), "reduction": self.aggregate.reduction,
                          "n": self.aggregate.count},
            "extras": self.extras,
        })


def _measure_paired_image(m: Measurement, score: Callable[..., float]) -> None:
    """Full-reference image metrics: one value per (prediction, ground truth) pair, pooled mean."""
    for pair in pair_paths(m.inputs.pred, m.inputs.gt):
        gt = read_rgb(pair.gt)
        pred = read_prediction(pair.pred)
        check_same_size(pred, gt, pair)
        value = float(score(pred, gt, **m.variant.params))
        m.aggregate.update(value)
        m.per_sample.append((pair.sample_id, value))


_KINDS: dict[str, Callable[[Measurement, Callable[..., Any]], None]] = {
    "paired_image": _measure_paired_image,
}
# Options each kind consumes in addition to --pred/--gt; anything else given is refused, not ignored.
_KIND_OPTIONS: dict[str, frozenset[str]] = {
    "paired_image": frozenset(),
}


def measure(metric: str, variant: str | None, inputs: MeasureInputs) -> Measurement:
    spec = registry().metric(metric)
    chosen = spec.variant(variant)
    if spec.kind not in _KINDS:
        raise TriptychError(f"metric {metric!r} has kind {spec.kind!r}, which 'measure' cannot run yet")
    unused = sorted(set(inputs.given_options()) - _KIND_OPTIONS[spec.kind])
    if unused:
        raise InputError(f"metric {metric!r} does not use {', '.join(unused)}",
                         fix=f"drop {', '.join(unused)}; masked variants are separate metrics")
    result = Measurement(spec, chosen, inputs)
    _KINDS[spec.kind](result, chosen.load())
    return result
