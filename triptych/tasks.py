"""The task contract: what a benchmark module gives the shared scoring loop, and what it gets back.

A task's benchmark module (``benchmarks/vos.py``, ``vfi.py``, ``personalization.py``, ``celeb.py``) implements
``TaskModule`` and its loader returns a ``BenchmarkData``; its ``measure`` turns each ``MetricUse`` into
``Score`` values. The orchestrator (``triptych.scoring``) consumes these types; the benchmark modules import
them from here, never from the orchestrator (docs/architecture.md, layer 1).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

from triptych.errors import InputError, TriptychError
from triptych.inputs import bind
from triptych.manifests import Manifest, read_manifest, verify_manifest
from triptych.registry import BenchmarkSpec, MetricSpec, VariantSpec


@dataclass(frozen=True)
class MetricUse:
    """A (metric, variant) pair of a benchmark, resolved to its callable."""

    spec: MetricSpec
    variant: VariantSpec
    fn: Callable[..., float]

    def __call__(self, *data: Any, offered: Mapping[str, Any] | None = None) -> Any:
        """The metric on its ``data`` with the variant's params and, of the inputs the caller ``offered``, those
        the variant declares (``triptych.inputs.bind``: a required input the caller lacks is a clear error)."""
        inputs = bind(self.variant.inputs, offered or {}, f"{self.spec.name}:{self.variant.name}")
        return self.fn(*data, **inputs, **self.variant.params)


@dataclass(frozen=True)
class Score:
    """One measurement of one sample, before it becomes a results row. A set-level metric's ``extras``
    (covariance ranks, reference value, faceless-image counts...) go to the run JSON's metric summary."""

    sample_id: str
    metric: MetricUse
    value: float
    extras: dict[str, Any] | None = None
    features: tuple[Any, Any] | None = None  # a set metric's (real, generated) features, generated in sample order
    recompute: Callable[[Any, Any], float] | None = None  # its value from features (the set interval's statistic)

    @classmethod
    def from_result(cls, sample_id: str, metric: MetricUse, result: Any) -> Score:
        """A metric's return value: a number, or a result object with ``.value`` and ``.extras()``
        (``metrics.fid.SetResult``, ``metrics.vfid.VfidResult``), and ``features`` / ``recompute`` when the
        set value can be recomputed from its features."""
        extras = result.extras() if callable(getattr(result, "extras", None)) else None
        return cls(sample_id, metric, float(getattr(result, "value", result)), extras,
                   getattr(result, "features", None), getattr(result, "recompute", None))


class TaskModule(Protocol):
    """What a task's benchmark module provides to the shared scoring loop."""

    def predict(self, method: Any, sample: Any) -> Any: ...

    def read_prediction(self, pred_dir: Path, sample: Any) -> Any: ...

    def measure(self, sample: Any, prediction: Any, metrics: Sequence[MetricUse]) -> list[Score]: ...


@dataclass
class BenchmarkData:
    """What a benchmark loader returns: the samples, the checked manifest, and the task module."""

    spec: BenchmarkSpec
    variant: str
    variant_params: dict[str, Any]
    root: Path
    manifest: Manifest
    samples: list[Any]
    task: TaskModule
    context: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    # a reduced set scored on request (``subset: true``): {"count", "of", "unit", ...}; None = the full split
    subset: dict[str, Any] | None = None


SET_SAMPLE_ID = "."  # the sample id of a set-level metric's one row
SUBSET_PARAM = "subset"  # the benchmark variant parameter of subset mode (``score --subset``)


def subset_requested(params: dict[str, Any], spec: BenchmarkSpec) -> bool:
    """Whether the run asked for subset mode: the variant parameter ``subset`` (``--subset`` or
    ``--param subset=true``), true or false; anything else is refused."""
    value = params.get(SUBSET_PARAM, False)
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in ("true", "1", "yes"):
        return True
    if str(value).strip().lower() in ("false", "0", "no"):
        return False
    raise TriptychError(f"benchmark {spec.name!r}: subset={value!r} is not true or false",
                        fix="pass --subset (or --param subset=true) to score a reduced set")


_TRUSTED_MANIFEST: ContextVar[str | None] = ContextVar("trusted_manifest", default=None)


@contextmanager
def trusting_manifest(sha256: str) -> Iterator[None]:
    """Within this block, the data of the manifest with this sha256 is not hashed again: the caller
    verified it moments ago (an executor's worker rebuilding the benchmark)."""
    token = _TRUSTED_MANIFEST.set(sha256)
    try:
        yield
    finally:
        _TRUSTED_MANIFEST.reset(token)


def load_checked_manifest(spec: BenchmarkSpec, data_root: Path) -> Manifest:
    """The benchmark's committed manifest, verified against the files under ``data_root``."""
    if data_root.exists() and not data_root.is_dir():
        raise InputError(f"--data-root {data_root}: a file, not a data folder",
                         fix="pass the folder that holds manifests/ and the benchmark's data")
    if not (data_root / spec.params["manifest"]).parent.is_dir():
        raise InputError(f"--data-root {data_root}: no {Path(spec.params['manifest']).parent}/ folder there, so it is "
                         f"not a triptych data folder (benchmark {spec.name!r} reads {spec.params['manifest']})",
                         fix="pass the folder that holds manifests/ and the benchmark's data (default: the "
                             "checkout's datasets/; 'triptych doctor' shows where the data roots point)")
    manifest = read_manifest(data_root / spec.params["manifest"])
    if manifest.sha256 != _TRUSTED_MANIFEST.get():
        verify_manifest(manifest, data_root / spec.params["root"])
    return manifest
