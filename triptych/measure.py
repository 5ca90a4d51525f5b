"""``triptych measure``: one metric variant over a user's own prediction and ground-truth files.

The metric's ``kind`` (in its registry entry) says how inputs are fed to it; each kind is one module
of ``triptych.measure_kinds``. The result is one JSON document of the shape in ``docs/conventions.md``.

User trunks (``--weights FILE``): a variant that declares the input ``trunk`` (``inputs`` in its registry entry,
``triptych.inputs``; every metric with a network but dlib's face similarity: LPIPS, DISTS, FID, CLIP, HPSv2,
...) gets the file in place of its first
registry weights entry, the trunk; the other entries (heads, learned weights) stay the registry's. The file
is recorded with its sha256 (``weights.describe_user_file``, ``replaces`` naming that entry). Unless its
sha256 is the entry's own, the rows' variant is ``VARIANT+user-<sha8>`` (e.g. ``alex+user-1a2b3c4d``), a
name no published row or registry variant carries, so it never pairs with published numbers (the leaderboard
pairs on ``metric_variant``, ``leaderboard/sitedata.py``). Kinds that take ``--weights`` themselves (VFID's
``video_set``, face diversity's ``image_groups``) keep their own handling.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from triptych.errors import InputError, TriptychError
from triptych.metrics.aggregate import SampleMean
from triptych.progress import tracked
from triptych.json_values import SCHEMA_VERSION, json_safe
from triptych.registry import MetricSpec, VariantSpec, registry
from triptych.threads import check_threads, configure_scoring_process
from triptych.weights import describe, describe_user_file

Item = TypeVar("Item")


@dataclass(frozen=True)
class MeasureInputs:
    pred: Path
    gt: Path | None  # None for a kind without ground truth (USES_GT = False)
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
    weights: list[dict[str, Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    user_trunk: dict[str, Any] | None = None  # the --weights record when it replaces the variant's trunk
    threads: int = 1  # --threads: a kind scores samples on this many threads (triptych.threads)

    @property
    def params(self) -> dict[str, Any]:
        """The variant's parameters, with ``trunk`` = the ``--weights`` file when it replaces the trunk."""
        return {**self.variant.params, **({"trunk": self.inputs.weights} if self.user_trunk else {})}

    @property
    def variant_label(self) -> str:
        """The rows' ``metric_variant``: the variant's name, ``+user-<sha8>`` with a trunk not the registry's."""
        record = self.user_trunk
        if record is None or record.get("name") == record.get("replaces"):
            return self.variant.name
        return f"{self.variant.name}+user-{record['sha256'][:8]}"

    def track(self, items: Iterable[Item], name: Callable[[Item], str], unit: str = "samples") -> Iterator[Item]:
        """``items`` in turn under the progress display of ``triptych measure`` (``triptych.progress``): a
        kind's loop over its samples (or videos) goes through this, naming each by ``name``."""
        return tracked(list(items), f"measure {self.metric.name}:{self.variant.name}", unit, name)

    def document(self) -> dict[str, Any]:
        """The ``triptych measure --json`` document (docs/conventions.md)."""
        return json_safe({
            "schema_version": SCHEMA_VERSION,
            "metric": self.metric.name,
            "metric_variant": self.variant_label,
            "metric_version": self.variant.version,
            "weights": self.weights,
            "inputs": {"pred": str(self.inputs.pred), "gt": None if self.inputs.gt is None else str(self.inputs.gt),
                       **{k.lstrip("-").replace("-", "_"): str(v) for k, v in self.inputs.given_options().items()}},
            "per_sample": [{"sample_id": sid, "value": value} for sid, value in self.per_sample],
            "aggregate": {"value": self.aggregate.compute(), "reduction": self.aggregate.reduction,
                          "n": self.aggregate.count},
            "extras": self.extras,
        })


def measure(metric: str, variant: str | None, inputs: MeasureInputs, threads: int | None = None) -> Measurement:
    """Score ``inputs`` with one metric variant on ``threads`` cores (None: the CPUs this process may use)."""
    threads = check_threads(threads)
    spec = registry().metric(metric)
    chosen = spec.variant(variant)
    try:
        kind = importlib.import_module(f"triptych.measure_kinds.{spec.kind}")
    except ModuleNotFoundError as exc:
        raise TriptychError(f"metric {metric!r} has kind {spec.kind!r}, which 'measure' cannot run") from exc
    fn = chosen.load()
    given = set(inputs.given_options())
    takes_trunk = "--weights" in given and "--weights" not in kind.OPTIONS
    # --weights is the declared input ``trunk``, or ``weights`` for a kind that records the file itself
    if "--weights" in given and not chosen.inputs.takes("trunk" if takes_trunk else "weights"):
        what = ("has no network, so --weights has nothing to replace" if not chosen.weights else
                f"does not take a user file for its weights ({', '.join(chosen.weights)})")
        raise InputError(f"metric {metric}:{chosen.name} {what}",
                         fix="drop --weights; it replaces the network file of a metric with one "
                             "(README, 'Perceptual and temporal metrics')")
    if takes_trunk:
        given.discard("--weights")
    unused = sorted(given - kind.OPTIONS)
    if unused:
        raise InputError(f"metric {metric!r} does not use {', '.join(unused)}",
                         fix=f"drop {', '.join(unused)}; masked variants are separate metrics")
    if (inputs.gt is not None) != getattr(kind, "USES_GT", True):
        given = inputs.gt is not None
        raise InputError(f"metric {metric!r} " + ("does not use --gt" if given else "needs --gt"),
                         fix="drop --gt" if given else "pass the ground truth (or the references) with --gt")
    result = Measurement(spec, chosen, inputs, threads=threads)
    configure_scoring_process(threads)  # a kind that scores samples on several threads sets them to 1 meanwhile
    if hasattr(kind, "check"):  # a kind's own option rules come before any weights lookup
        kind.check(result, fn)
    if takes_trunk:  # the user's file stands in for the trunk, the variant's first weights entry
        result.user_trunk = {**describe_user_file(inputs.weights), "replaces": chosen.weights[0]}
        result.weights = [result.user_trunk, *(describe(name) for name in chosen.weights[1:])]
    elif chosen.weights and inputs.weights is None:  # a kind that takes --weights records the user's file
        result.weights = [describe(name) for name in chosen.weights]
    kind.run(result, fn)
    return result
