"""``triptych score``: benchmark + (method | prediction folder) -> one run in the results schema.

Flow: the registry resolves the benchmark, its variant and its (metric, variant) pairs -> the benchmark's
loader lists the samples and checks the data against its manifest -> the executor (``triptych.executors``,
a generic map) runs ``score_sample`` for each sample, where the task module produces the prediction (from
the method, or read from ``--pred-dir``) and measures it -> its rows are written as one part file ->
``finish`` merges the parts and records the aggregates (with the pooling the benchmark spec declares) and
provenance.
"""

from __future__ import annotations

import functools
import os
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

import triptych
from triptych.errors import TriptychError
from triptych.labels import method_label, method_version_of
from triptych.executors import check_executor
from triptych.executors import run as run_executor
from triptych.fingerprints import (PREDICTIONS, canonical, changes, current_predictions, hash_files, reading_under,
                                   summarize)
from triptych.metrics.aggregate import SampleMean
from triptych.methods import PROTOCOLS, build_method, check_method_keys, method_for_task
from triptych.progress import interrupted_line, sample_progress
from triptych.registry import BenchmarkSpec, load_callable, registry
from triptych.results import (RunWriter, busy_run, folder_lock, new_run_id, request_key, result_row, run_metadata,
                              runs_of_request, wait_for)
from triptych.schema import LoaderSchema, Schema, declared_schema, typed_override
from triptych.stats import IntervalSettings, SamplingUnit, mean_interval, set_interval, units_of
from triptych.tasks import BenchmarkData, MetricUse, Score, trusting_manifest
from triptych.weights import describe as describe_weights
from triptych.weights import describe_user_file


def datasets_root() -> Path:
    """Where benchmark data paths are resolved: ``TRIPTYCH_DATASETS`` or the checkout's ``datasets/``."""
    env = os.environ.get("TRIPTYCH_DATASETS")
    if env:
        return Path(env)
    root = Path(triptych.__file__).resolve().parent.parent / "datasets"
    if not root.is_dir():
        raise TriptychError("no datasets folder found next to the triptych sources",
                            fix="set TRIPTYCH_DATASETS to a folder holding samples/ and manifests/, or pass "
                                "--data-root")
    return root


def resolve_metrics(spec: BenchmarkSpec, override: Sequence[str] | None = None) -> list[MetricUse]:
    """The benchmark's (metric, variant) pairs, or ``override`` given as ``metric:variant`` strings (each
    metric must serve the benchmark's task; a variant is always named, never defaulted)."""
    reg = registry()
    pairs = list(spec.metrics)
    if override:
        pairs = []
        for item in override:
            metric_name, sep, variant_name = item.partition(":")
            if not sep:
                raise TriptychError(f"metric {item!r} names no variant", fix=f"write it as {item}:VARIANT")
            if spec.task not in reg.metric(metric_name).tasks:
                raise TriptychError(f"metric {metric_name!r} does not serve {spec.task} (benchmark {spec.name!r})",
                                    fix=f"see 'triptych list metrics' for {spec.task} metrics")
            pairs.append((metric_name, variant_name))
    uses = []
    for metric_name, variant_name in pairs:
        metric = reg.metric(metric_name)
        variant = metric.variant(variant_name)
        uses.append(MetricUse(metric, variant, variant.load()))
    return uses


def loader_schema_of(spec: BenchmarkSpec) -> LoaderSchema:
    """The keys that the benchmark's loader declares it reads (``triptych.schema.loader_schema``)."""
    return declared_schema(load_callable(spec.loader), spec.loader, spec.source)


def load_benchmark(name: str, variant: str | None = None, data_root: Path | None = None,
                   params: dict[str, str] | None = None) -> BenchmarkData:
    """The benchmark's samples. The variant's keys are checked against those its loader declares, and
    ``params`` (``--param K=V``, ``--refs``) may override only those, so a typo never goes unnoticed."""
    spec = registry().benchmark(name)
    variant_name, variant_params = spec.variant(variant)
    declared = loader_schema_of(spec)
    declared.params.check(spec.params, f"{spec.source} params")
    declared = declared.variant
    declared.check(variant_params, f"{spec.source} variant {variant_name!r}")
    where = f"benchmark {name!r} (variant {variant_name!r})"
    Schema("--param", (), declared.keys).check(params or {}, where)
    overrides = {k: typed_override(k, v, variant_params.get(k), where) for k, v in (params or {}).items()}
    loader = load_callable(spec.loader)
    return loader(spec, variant_name, {**variant_params, **overrides}, data_root or datasets_root())


def check_request(data: BenchmarkData, method_name: str | None, pred_dir: Path | None,
                  weights: Path | None = None, device: str | None = None, method_object: Any = None) -> None:
    """Exactly one of a method of the benchmark's task and an existing prediction folder; ``weights`` (a
    checkpoint replacing a registered method's registry weights) and ``device`` only with a registered
    method whose factory takes them. ``method_object`` is the object ``triptych.evaluate`` was given,
    scored under the label ``method_name``."""
    if (method_name is None) == (pred_dir is None):
        raise TriptychError("give exactly one of --method and --pred-dir")
    if device is not None and (method_name is None or method_object is not None
                               or not registry().method(method_name).inputs.takes("device")):
        what = "a prediction folder runs no model" if method_name is None else f"method {method_name!r} takes no device"
        raise TriptychError(f"--device {device}: {what}", fix="leave out --device")
    if weights is not None and pred_dir is not None:
        raise TriptychError(f"--weights {weights} with --pred-dir: a prediction folder is scored as it is, "
                            "no model is run", fix="leave out --weights, or score the method with --method M "
                                                   "--weights FILE")
    if weights is not None and method_object is not None:
        raise TriptychError(f"--weights {weights} with the method object {method_name!r}",
                            fix="load the weights into the object before scoring it")
    if pred_dir is not None and not pred_dir.is_dir():
        raise TriptychError(f"--pred-dir {pred_dir}: no such folder", fix="check the path")
    if method_object is not None:
        protocol = PROTOCOLS[data.spec.task]
        if not isinstance(method_object, protocol):
            raise TriptychError(f"method object {method_name!r} does not implement {protocol.__name__}, which "
                                f"benchmark {data.spec.name!r} ({data.spec.task}) needs",
                                fix=f"give it the method documented in triptych.methods.{protocol.__name__}")
    elif method_name is not None:
        method_spec = registry().method(method_name)
        if method_spec.task != data.spec.task:
            raise TriptychError(f"method {method_name!r} is a {method_spec.task} method, but benchmark "
                                f"{data.spec.name!r} is {data.spec.task}",
                                fix=f"see 'triptych list methods' for {data.spec.task} methods")
        if weights is not None:
            method_for_task(method_name, data.spec.task, weights)  # a factory without ``weights``, a missing file


def producer(data: BenchmarkData, method_name: str | None, pred_dir: Path | None,
             weights: Path | None = None, device: str | None = None, method_object: Any = None) -> Callable[[Any], Any]:
    """sample -> prediction: run the registered method (on the checkpoint ``weights`` instead of its registry
    weights when given, on ``device`` when given) or the method object, or read the method's outputs from
    ``pred_dir``."""
    check_request(data, method_name, pred_dir, weights, device, method_object)
    if pred_dir is not None:
        return lambda sample: data.task.read_prediction(pred_dir, sample)
    if method_object is not None:
        return lambda sample: data.task.predict(method_object, sample)
    method = build_method(method_for_task(method_name, data.spec.task, weights), context=data.context,
                          invocation={**data.variant_params, **({"device": device} if device else {})})
    return lambda sample: data.task.predict(method, sample)


@dataclass(frozen=True)
class ScoreJob:
    """Everything a worker needs to score one sample of a benchmark, as plain values."""

    benchmark: str
    benchmark_variant: str | None
    data_root: str
    method: str | None
    pred_dir: str | None
    manifest_sha256: str  # verified by the caller before any scoring; workers do not hash the data again
    metrics: tuple[str, ...] = ()  # "metric:variant" overrides of the benchmark's metric set
    params: tuple[tuple[str, str], ...] = ()  # benchmark parameter overrides (load_benchmark)
    weights: str | None = None  # absolute path of a checkpoint replacing the method's registry weights
    device: str | None = None  # the method's device (score)


@dataclass(frozen=True)
class _Context:
    """What scoring a sample of a job reads: the benchmark's data, its per-sample metrics, the producer."""

    data: BenchmarkData
    metrics: list[MetricUse]
    produce: Callable[[Any], Any]


def _sample_context(data: BenchmarkData, metrics: Sequence[MetricUse], job: ScoreJob,
                    method_object: Any = None) -> _Context:
    """The context of scoring ``job``'s samples: its per-sample metrics (set metrics: once all are scored)."""
    return _Context(data, [m for m in metrics if m.spec.level != "set"], _job_producer(data, job, method_object))


def _job_producer(data: BenchmarkData, job: ScoreJob, method_object: Any = None) -> Callable[[Any], Any]:
    return producer(data, job.method, Path(job.pred_dir) if job.pred_dir else None,
                    Path(job.weights) if job.weights else None, job.device, method_object)


@functools.lru_cache(maxsize=4)
def _context(job: ScoreJob) -> _Context:
    """A worker's context of ``job``, built once per process (the benchmark, metrics and method loaded once)."""
    with trusting_manifest(job.manifest_sha256):
        data = load_benchmark(job.benchmark, job.benchmark_variant, Path(job.data_root), dict(job.params))
    return _sample_context(data, resolve_metrics(data.spec, job.metrics or None), job)


MeasuredValue = tuple[str, str, str, int, float, "dict[str, Any] | None"]
Scored = tuple[list[MeasuredValue], "dict[str, str] | None"]  # the measurements, the prediction files read


def score_sample(job: ScoreJob, index: int) -> Scored:
    """Score sample ``index`` of ``job`` in a worker (any executor: ``triptych.executors``): see ``_measure``."""
    return _measure(_context(job), job, index)


def _measure(ctx: _Context, job: ScoreJob, index: int) -> Scored:
    """(sample_id, metric, metric variant, metric version, value, flags) per measurement of sample ``index``,
    where ``flags`` are the score's extras (e.g. ``{"no_face": True}``) or None; and, for a prediction
    folder, ``{relative path: sha256}`` of each file read under it (None for a method)."""
    sample = ctx.data.samples[index]

    def measure() -> list[MeasuredValue]:
        scores = ctx.data.task.measure(sample, ctx.produce(sample), ctx.metrics)
        return [(s.sample_id, s.metric.spec.name, s.metric.variant.name, s.metric.variant.version, s.value,
                 s.extras) for s in scores]

    if job.pred_dir is None:
        return measure(), None
    with reading_under(job.pred_dir) as opened:
        measurements = measure()
    return measurements, hash_files(job.pred_dir, opened, f"sample {index} of {job.benchmark}")


def _stale_parts(writer: RunWriter, identity: dict[str, Any], pred_dir: Path | None) -> dict[str, list[str]]:
    """Each part of the run whose stored fingerprint differs from ``identity`` (plus, for a prediction
    folder, the files the part read, hashed again now), with the reasons."""
    stale = {}
    for path in writer.parts():
        stored = writer.part_fingerprint(path.stem)
        current = dict(identity)
        if pred_dir is not None:
            current[PREDICTIONS] = current_predictions(pred_dir, (stored or {}).get(PREDICTIONS) or {})
        reasons = changes(stored, current)
        if reasons:
            stale[path.stem] = reasons
    return stale


def _open_run(out: Path, label: str, request: dict[str, Any], meta: dict[str, Any], identity: dict[str, Any],
              pred_dir: Path | None, parts: int, fresh: bool) -> RunWriter:
    """The run this request writes into, chosen under the results folder's lock (``results.folder_lock``):

    * with ``fresh``, a new run;
    * else the unfinished run of the same request (after a crash, a kill or a failed sample): its parts whose
      fingerprint still matches are kept, the others are removed to be scored again;
    * else the newest complete run of the request when every part still matches: returned as it is (status
      complete), nothing is scored;
    * else a new run.
    """
    key = request_key(request)
    writer = None if fresh else RunWriter.resume(out, key)
    if writer is not None:
        stale = _stale_parts(writer, identity, pred_dir)
        for part in stale:
            writer.drop_part(part)
        reused = len(writer.parts())
        writer.meta.update({**meta, "request": request})  # what the run is now made of (recomputed parts)
        writer.meta.setdefault("resumes", []).append(
            {"utc": writer.meta["resumed_utc"][-1], "reused": reused, "recomputed": len(stale),
             "reasons": summarize(stale) if stale else "", "removed_tmp_files": writer.leftovers})
        why = f" ({summarize(stale)})" if stale else ""
        tmp = f"; removed {writer.leftovers} temporary file(s) of interrupted writes" if writer.leftovers else ""
        print(f"resuming run {writer.run_id}: {reused} part(s) reused, {len(stale)} recomputed{why}, "
              f"{parts - reused - len(stale)} not scored yet{tmp}", file=sys.stderr)
        return writer
    for done in runs_of_request(out, key) if not fresh else ():
        if done.get("status") != "complete":
            continue
        previous = RunWriter(out, done["run_id"], done)
        stale = _stale_parts(previous, identity, pred_dir)
        if not stale and len(previous.parts()) == parts:
            print(f"run {previous.run_id} of the same request is complete and every one of its {parts} part(s) "
                  "matches the current inputs: reused, nothing scored (--fresh scores a new run)", file=sys.stderr)
            return previous
        print(f"run {previous.run_id} of the same request is complete but out of date "
              f"({summarize(stale) if stale else 'parts missing'}): scoring a new run", file=sys.stderr)
        break
    writer = RunWriter(out, new_run_id(label))
    writer.begin({**meta, "request": request, "request_key": key})
    return writer


def score(benchmark: str, out: Path, method: str | None = None, pred_dir: Path | None = None,
          benchmark_variant: str | None = None, data_root: Path | None = None, executor: str = "local",
          workers: int = 1, ray_address: str | None = None, metrics: Sequence[str] | None = None,
          params: dict[str, str] | None = None, weights: Path | None = None, fresh: bool = False,
          interval: IntervalSettings | None = None, device: str | None = None, name: str | None = None,
          method_version: str | None = None, method_object: Any = None) -> Path:
    """Score one method (or a prediction folder) on one benchmark; returns the run folder.

    ``method_object`` is a method object (``triptych.evaluate``), scored in this process under the label
    ``method``.

    ``name`` and ``method_version`` label a prediction folder's run (default ``pred-dir``, no version):
    ``triptych.labels`` checks them; both are part of the request, so two named folders make two runs.

    ``device`` (cuda, cpu, ...) is passed to a registered method whose factory takes one; it is part of the
    request, so a run started on one device is never resumed on another.

    ``weights`` runs a registered method on a checkpoint file instead of its registry weights (its factory
    must take ``weights``, as for ``triptych interpolate --weights``): the run JSON records the file as
    ``weights.describe_user_file`` does (sha256, ``user_supplied``, or the registry name its sha256 matches),
    with ``replaces`` naming the registry entries, and the file's sha256 is part of the request.

    Each sample's rows are written as one part file as soon as it is scored, with the fingerprint of what
    produced it (``triptych.fingerprints``). The same request (benchmark, variant, method or prediction
    folder, metrics, parameters, data root, into the same ``out``) makes one run: a second process with it
    waits for the first; if the process dies or a sample fails, the same call resumes the run, keeps the
    parts whose fingerprint still matches and scores the others (missing, or made from other predictions,
    another method version, other data); a complete run whose parts all match is returned as it is.
    ``fresh`` always starts a new run. The executor (in process, ``workers`` local processes, or Ray) changes
    where samples are scored, never the rows. Set-level metrics (FID, KID, face diversity: one row each)
    are measured once every sample is scored, by the task module's ``measure_set``, and written as their
    own part. A task module with ``check_predictions`` checks the whole ``pred_dir`` (missing and extra
    files) before anything is scored. A set metric's result extras are stored with its part and
    summarised under the metric in the run JSON. Each aggregate gets a bootstrap interval over the
    benchmark's sampling unit (``triptych.stats``) with ``interval``'s settings (default: 95 %, percentile,
    2,000 resamples, seed 0), recorded under ``statistics``; the settings are part of the request.
    """
    check_executor(executor, workers)
    interval = interval or IntervalSettings()
    params = dict(params or {})
    data = load_benchmark(benchmark, benchmark_variant, data_root, params)
    metric_names = list(metrics) if metrics else None
    metrics = resolve_metrics(data.spec, metric_names)
    weights = Path(weights).expanduser().resolve() if weights is not None else None
    check_request(data, method, pred_dir, weights, device, method_object)
    set_metrics = [m for m in metrics if m.spec.level == "set"]
    if set_metrics and not hasattr(data.task, "measure_set"):
        raise TriptychError(f"benchmark {data.spec.name!r} cannot measure set-level metrics "
                            f"({', '.join(m.spec.name for m in set_metrics)})", fix="leave them out (--metric)")
    if pred_dir is not None and hasattr(data.task, "check_predictions"):
        data.task.check_predictions(pred_dir, data.samples)
    if method_object is not None and (executor != "local" or workers != 1):
        raise TriptychError(f"method object {method!r} lives in this process, so it is scored in process",
                            fix="use executor 'local' with 1 worker, or register the method as a plugin")
    method_spec = registry().method(method) if method is not None and method_object is None else None
    if method_spec is not None:  # before the run opens: its params, and a --param of how it is invoked
        check_method_keys(method_spec, [k for k in params if k in loader_schema_of(data.spec).invocation])
    label = method_label(method, name, in_process=method_object is not None)
    given_version = method_version_of(method_version, registered=method_spec is not None)
    method_version = (str(method_spec.version) if method_spec is not None else given_version
                      if given_version is not None else str(getattr(method_object, "version", ""))
                      if method_object is not None else "")
    if method_spec is not None and method_spec.plugin:  # a plugin's rows carry its distribution's version
        method_version += " ({} {})".format(*method_spec.plugin)
    plugins = {f"method {method}": method_spec.plugin} if method_spec is not None and method_spec.plugin else {}
    plugins.update({f"metric {m.spec.name}": m.spec.plugin for m in metrics if m.spec.plugin})
    if data.spec.plugin:
        plugins[f"benchmark {data.spec.name}"] = data.spec.plugin
    method_weights = []  # the user's file (run JSON) in place of the method's registry entries
    if weights is not None and method_spec is not None:
        method_weights = [{**describe_user_file(weights), "replaces": list(method_spec.weights)}]
    weight_names = [*(method_spec.weights if method_spec and weights is None else ()),
                    *(w for m in metrics for w in m.variant.weights)]
    run_weights = [*method_weights, *(describe_weights(name) for name in dict.fromkeys(weight_names))]
    pred_dir = pred_dir.resolve() if pred_dir is not None else None
    request = {"benchmark": data.spec.name, "benchmark_variant": data.variant, "method": label,
               **({"method_version": given_version} if given_version is not None else {}),
               "pred_dir": str(pred_dir) if pred_dir is not None else None,
               "metrics": [(m.spec.name, m.variant.name) for m in metrics], "data_root": str(data.root.resolve()),
               **({"params": params} if params else {}),
               **({"weights_sha256": method_weights[0]["sha256"]} if method_weights else {}),
               **({"interval": interval.to_json()} if interval != IntervalSettings() else {}),
               **({"device": device} if device else {})}
    identity = _identity(data, metrics, run_weights, method_spec, method_object, label, method_version,
                         request["pred_dir"])
    meta = run_metadata(
        data.spec.task, data.spec.benchmark, data.spec.split, data.variant, label, method_version,
        benchmark_version=data.spec.version, benchmark_params=data.variant_params,
        **({"benchmark_extras": data.extras} if data.extras else {}), pred_dir=request["pred_dir"],
        data={"manifest": data.manifest.name, "manifest_sha256": data.manifest.sha256, "root": str(data.root),
              "subset": data.subset},
        weights=run_weights, seed=0,
        executor={"name": executor, "workers": workers, "ray_address": ray_address},
        plugins={what: {"distribution": dist, "version": ver} for what, (dist, ver) in plugins.items()},
        method_source=("python object " + type(method_object).__qualname__ if method_object is not None
                       else method_spec.source if method_spec is not None else "prediction folder"),
    )
    job = ScoreJob(data.spec.name, data.variant, str((data_root or datasets_root()).resolve()), method,
                   request["pred_dir"], data.manifest.sha256, tuple(metric_names or ()), tuple(sorted(params.items())),
                   str(weights) if weights is not None else None, device)
    while True:  # one run per request: wait for a process that is scoring the same request, then look again
        with folder_lock(out):
            busy = None if fresh else busy_run(out, request_key(request))
            if busy is None:
                writer = _open_run(out, f"{benchmark.replace('/', '-')}-{label}", request, meta, identity,
                                   pred_dir, len(data.samples) + bool(set_metrics), fresh)
                break
        print(f"another triptych process is scoring the same request into {out} (run {busy.name}): waiting for "
              "it to finish", file=sys.stderr)
        wait_for(busy)
    if writer.meta.get("status") != "complete":
        _score_parts(writer, data, job, metrics, set_metrics, identity, pred_dir, executor, workers,
                     ray_address, interval, method_object)
    return writer.run_dir


def _identity(data: BenchmarkData, metrics: Sequence[MetricUse], run_weights: list[dict[str, Any]],
              method_spec: Any, python_method: Any, label: str, version: str, pred_dir: str | None) -> dict[str, Any]:
    """What every part of a run shares in its fingerprint (``triptych.fingerprints``): the benchmark's
    version and parameters, the data manifest, each metric variant's version, plugin and weights, and the
    method's identity (registry name, version, plugin, parameters and weights sha256; a Python object's
    class and version; or the prediction folder, whose files each part adds)."""
    sha = {w["name"] or w["path"]: w["sha256"] for w in run_weights}
    if method_spec is not None:
        user_file = [w["sha256"] for w in run_weights if w.get("replaces") is not None]
        method = {"name": method_spec.name, "version": method_spec.version, "plugin": _plugin(method_spec),
                  "params": method_spec.params,
                  "weights": {"user file": user_file[0]} if user_file else {w: sha.get(w) for w in method_spec.weights}}
    elif python_method is not None:
        method = {"name": label, "class": type(python_method).__qualname__, "version": version}
    else:
        method = {"prediction folder": pred_dir}
    return canonical({
        "benchmark": {"version": data.spec.version, "params": data.variant_params, "plugin": _plugin(data.spec)},
        "data": {"manifest_sha256": data.manifest.sha256},
        "metrics": {_key(m): {"version": m.variant.version, "plugin": _plugin(m.spec),
                              "weights": {w: sha.get(w) for w in m.variant.weights}} for m in metrics},
        "method": method,
    })


def _score_parts(writer: RunWriter, data: BenchmarkData, job: ScoreJob, metrics: list[MetricUse],
                 set_metrics: list[MetricUse], identity: dict[str, Any], pred_dir: Path | None, executor: str,
                 workers: int, ray_address: str | None, interval: IntervalSettings, method_object: Any) -> None:
    """Score the samples that have no part yet (and the set metrics), each part with its fingerprint, then
    merge the parts into the run's rows and aggregates. A method object is scored in this process, with the
    benchmark already loaded here; every other job goes to the executor as ``score_sample`` calls."""
    todo = sorted((i for i in range(len(data.samples)) if not writer.has_part(_part(i))),
                  key=lambda i: -_cost(data.samples[i]))  # longest first: the workers finish together
    work = (score_sample if method_object is None
            else functools.partial(_measure, _sample_context(data, metrics, job, method_object)))
    unit = {m.spec.name: (m.spec.level, m.spec.unit) for m in metrics}
    run_method = writer.meta["method"]

    def rows(measurements: list[tuple[str, str, str, int, float, Any]]) -> list[dict[str, Any]]:
        return [result_row(writer.run_id, writer.meta, sample_id, unit[metric][0], metric, variant, version, value,
                           unit[metric][1])
                for sample_id, metric, variant, version, value, _ in measurements]

    def flags(measurements: list[tuple[str, str, str, int, float, Any]]) -> dict[str, Any] | None:
        """A sample's score flags (its scores' extras), stored with its part: ``{sample_id|metric:variant: {...}}``."""
        found = {f"{sample_id}|{metric}:{variant}": extra
                 for sample_id, metric, variant, _, _, extra in measurements if extra}
        return found or None

    def fingerprint(read: dict[str, str] | None) -> dict[str, Any]:
        return {**identity, PREDICTIONS: read} if pred_dir is not None else identity

    try:
        with sample_progress(f"{data.spec.name} {run_method}", len(data.samples),
                             len(data.samples) - len(todo)) as advance:
            for position, (measurements, read) in run_executor(work, [(job, i) for i in todo], executor, workers,
                                                               ray_address):
                index = todo[position]
                writer.add_rows(rows(measurements), part=_part(index), extras=flags(measurements),
                                fingerprint=fingerprint(read))
                advance(_sample_label(data.samples[index], index))
        if set_metrics and not writer.has_part(SET_PART):
            with reading_under(pred_dir) if pred_dir is not None else nullcontext(set()) as opened:
                scores = data.task.measure_set(data.samples, _job_producer(data, job, method_object), set_metrics)
            read = hash_files(pred_dir, opened, "the set-level metrics") if pred_dir is not None else None
            extras = {_key(s.metric): {**(s.extras or {}), **_set_interval(writer.run_dir, s, data.samples,
                                                                          data.spec.sampling_unit, interval)}
                      for s in scores if s.extras is not None or s.features is not None}
            writer.add_rows(rows([(s.sample_id, s.metric.spec.name, s.metric.variant.name, s.metric.variant.version,
                                   s.value, None) for s in scores]), part=SET_PART, extras=extras,
                            fingerprint=fingerprint(read))
    except (TriptychError, KeyboardInterrupt) as exc:
        done = len(writer.parts())
        if done:
            writer.fail(str(exc))
            kept = f"the {done} sample(s) already scored are kept in {writer.run_dir}; the same command resumes the run"
        else:
            writer.discard()
            kept = "no sample was scored, so no run was kept"
        if isinstance(exc, TriptychError):
            raise TriptychError(exc.message, fix=f"{exc.fix + '; ' if exc.fix else ''}{kept}") from exc
        print(interrupted_line(f"{done} of {len(data.samples)} sample(s) saved in {writer.run_dir}" if done
                               else "no sample was scored, so no run was kept"), file=sys.stderr, flush=True)
        raise
    set_extras = writer.part_extras(SET_PART) if set_metrics else {}
    flagged = _flagged(writer, [p.stem for p in writer.parts() if p.stem != SET_PART])
    unit = data.spec.sampling_unit
    writer.finish(lambda samples: {
        "statistics": {**interval.to_json(), "sampling_unit": {"name": unit.name, "depth": unit.depth}},
        "metrics": [_summary(m, samples, set_extras, flagged.get(_key(m), {}),
                             data.spec.pooling.get(m.spec.level) == "per_video", unit, interval)
                    for m in metrics]})


SET_PART = "part-set"  # sorts after every per-sample part


def _cost(sample: Any) -> int:
    """A sample's relative cost: its length where it has one (a video's frames), else 1. Only the order in
    which samples are handed out depends on it; each sample's rows are its own part, merged in index order."""
    return len(sample) if hasattr(sample, "__len__") else 1


def _sample_label(sample: Any, index: int) -> str:
    """How the progress display names a sample: its id (or the id prefix of its images)."""
    return str(getattr(sample, "sample_id", None) or getattr(sample, "sample_prefix", None) or index)


def _part(index: int) -> str:
    return f"part-{index:06d}"


def _plugin(spec: Any) -> str | None:
    """A registry entry's plugin as ``"distribution version"`` (None for a packaged entry)."""
    return " ".join(spec.plugin) if spec.plugin else None


def _key(m: MetricUse) -> str:
    return f"{m.spec.name}:{m.variant.name}"


def _flagged(writer: RunWriter, parts: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per ``metric:variant``, each flag raised by a sample's score (e.g. ``no_face``: an image scored 0 for
    want of a face) with the count and sorted sample ids, from every part: complete whatever the executor,
    workers or resumes."""
    found: dict[str, dict[str, list[str]]] = {}
    for part in parts:
        for key, extra in (writer.part_extras(part) or {}).items():
            sample_id, _, metric = key.rpartition("|")
            for flag, raised in extra.items():
                if raised:
                    found.setdefault(metric, {}).setdefault(flag, []).append(sample_id)
    return {metric: {flag: {"count": len(ids), "sample_ids": sorted(ids)} for flag, ids in flags.items()}
            for metric, flags in found.items()}


def _mean_over(values: list[float]) -> float:
    """The mean of per-video values (inf when one is inf, as the pooled mean is)."""
    acc = SampleMean()
    for value in values:
        acc.update(value)
    return acc.compute()


FEATURES_DIR = "features"  # RUN/features/<metric>-<variant>.npz: a set metric's cached features (docs/statistics.md)


def _set_interval(run_dir: Path, s: Score, samples: Sequence[Any], unit: SamplingUnit,
                  settings: IntervalSettings) -> dict[str, Any]:
    """Cache a set metric's features in the run folder and bootstrap its value from them (``interval``)."""
    if s.features is None or s.recompute is None:
        return {}
    import numpy as np

    from triptych.atomic import atomic_write

    real, generated = (np.asarray(f) for f in s.features)
    ids = np.array([str(sample.sample_id) for sample in samples])
    if len(ids) != len(generated):
        raise TriptychError(f"{_key(s.metric)}: {len(generated)} generated features for {len(ids)} samples",
                            fix="a set metric's generated features must follow the benchmark's samples")
    path = run_dir / FEATURES_DIR / f"{s.metric.spec.name}-{s.metric.variant.name}.npz"

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, real=real, generated=generated, generated_ids=ids)

    atomic_write(path, write)
    return {"interval": {**set_interval(s.recompute, real, generated, ids, unit, settings),
                         "features_file": f"{FEATURES_DIR}/{path.name}"}}


def _interval(m: MetricUse, rows: pd.DataFrame, unit: SamplingUnit, settings: IntervalSettings,
              set_extras: dict[str, Any]) -> dict[str, Any]:
    if m.spec.level == "set":
        return set_extras.get(_key(m), {}).get("interval") or {
            "low": None, "high": None, **settings.to_json(), "unit": "set", "units": 1,
            "note": "one value over the whole set, without cached features: it is not resampled"}
    return mean_interval(units_of(rows["sample_id"], rows["value"], unit), unit, settings)


def _summary(m: MetricUse, samples: pd.DataFrame, set_extras: dict[str, Any], flagged: dict[str, Any],
             per_video: bool = False, unit: SamplingUnit = SamplingUnit(),
             interval: IntervalSettings = IntervalSettings()) -> dict[str, Any]:
    """The pooled aggregate of one metric variant, from the run's rows (the same rows whatever the resumes);
    a set-level metric adds the extras stored with the set part, and flags raised by samples' scores
    (``flagged``) are listed under ``flagged``. With ``per_video`` (the benchmark spec's ``pooling`` of the
    metric's level, e.g. ``{frame: per_video}`` for video completion), the metric also gets each video's mean
    and the mean over videos: E2FGVI reports the pooled mean over all frames, DEVIL the mean of the
    per-video means (equal only when every video has as many frames). The aggregate's
    ``interval`` resamples the sampling unit (a set metric's one value has none: see its note)."""
    acc = SampleMean(reduction="one value over the whole set" if m.spec.level == "set" else SampleMean.reduction)
    rows = samples.loc[(samples.metric == m.spec.name) & (samples.metric_variant == m.variant.name)]
    for value in rows["value"]:
        acc.update(float(value))
    videos = {}
    if per_video:
        for video, group in rows.groupby(rows.sample_id.str.split("/").str[0], sort=True):
            video_acc = SampleMean()
            for value in group["value"]:
                video_acc.update(float(value))
            videos[video] = {"value": video_acc.compute(), "n": video_acc.count}
    return {"metric": m.spec.name, "variant": m.variant.name, "version": m.variant.version, "unit": m.spec.unit,
            "direction": m.spec.direction,
            "aggregate": {"value": acc.compute(), "reduction": acc.reduction, "n": acc.count,
                          "interval": _interval(m, rows, unit, interval, set_extras)},
            **({"per_video": videos, "mean_over_videos": _mean_over([v["value"] for v in videos.values()])}
               if videos else {}),
            **({"extras": {k: v for k, v in set_extras.get(_key(m), {}).items() if k != "interval"}}
               if m.spec.level == "set" else {}),
            **({"flagged": flagged} if flagged else {})}
