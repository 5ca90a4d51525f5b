"""Where samples are scored: in this process, in a pool of local worker processes, or on a Ray cluster.

Every executor runs the same function, ``score_sample(job, index)``, on a picklable ``ScoreJob``; a worker
rebuilds the benchmark, metrics and method once per process. Results come back in completion order and
the caller writes each sample's rows as its own part (named by the sample's index), so neither the
executor nor the number of workers can change a number or the order of the rows. A scored prediction
folder's sample also returns the sha256 of every file it read (``triptych.fingerprints``).

Local workers never outlive the process that started them: each asks the kernel for SIGKILL when its
parent dies (Linux ``PR_SET_PDEATHSIG``) and watches its parent's pid, so a ``kill -9`` of ``triptych
score --workers N`` leaves no worker (and so no resource tracker, which exits with its last client).
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from triptych.errors import TriptychError
from triptych.fingerprints import hash_files, reading_under

EXECUTORS = ("local", "ray")


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
    params: tuple[tuple[str, str], ...] = ()  # benchmark parameter overrides (scoring.load_benchmark)
    weights: str | None = None  # absolute path of a checkpoint replacing the method's registry weights
    device: str | None = None  # the method's device (scoring.score)


@dataclass(frozen=True)
class _Context:
    data: Any
    metrics: list[Any]
    produce: Callable[[Any], Any]


@functools.lru_cache(maxsize=4)
def _context(job: ScoreJob) -> _Context:
    from triptych import scoring

    with scoring.trusting_manifest(job.manifest_sha256):
        data = scoring.load_benchmark(job.benchmark, job.benchmark_variant, Path(job.data_root), dict(job.params))
    produce = scoring.producer(data, job.method, Path(job.pred_dir) if job.pred_dir else None,
                               Path(job.weights) if job.weights else None, job.device)
    return _Context(data, scoring.resolve_metrics(data.spec, job.metrics or None), produce)


MeasuredValue = tuple[str, str, str, int, float, "dict[str, Any] | None"]
Scored = tuple[list[MeasuredValue], "dict[str, str] | None"]  # the measurements, the prediction files read


def score_sample(job: ScoreJob, index: int) -> Scored:
    """Score sample ``index``: (sample_id, metric, metric variant, metric version, value, flags) per
    measurement, where ``flags`` are the score's extras (e.g. ``{"no_face": True}``) or None; and, for a
    prediction folder, ``{relative path: sha256}`` of each file read under it (None for a method)."""
    ctx = _context(job)
    sample = ctx.data.samples[index]
    per_sample = [m for m in ctx.metrics if m.spec.level != "set"]  # set metrics: scoring.score, at the end

    def measure() -> list[MeasuredValue]:
        scores = ctx.data.task.measure(sample, ctx.produce(sample), per_sample)
        return [(s.sample_id, s.metric.spec.name, s.metric.variant.name, s.metric.variant.version, s.value,
                 s.extras) for s in scores]

    if job.pred_dir is None:
        return measure(), None
    with reading_under(job.pred_dir) as opened:
        measurements = measure()
    return measurements, hash_files(job.pred_dir, opened, f"sample {index} of {job.benchmark}")


Result = Iterator[tuple[int, Scored]]


def run_in_process(job: ScoreJob, indices: Sequence[int]) -> Result:
    for index in indices:
        yield index, score_sample(job, index)


def _worker_init() -> None:
    from triptych.threads import single_threaded_worker

    single_threaded_worker()  # one core per worker: N workers use N cores (set before torch is imported)


PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_POLL_S = 1.0


def _die_with(parent: int) -> None:
    """Make this worker end when ``parent`` does, even after a ``kill -9`` of the parent: the kernel's
    parent-death signal (Linux), and a thread that exits the process once its parent pid changes (any OS,
    and the moment between the fork and the ``prctl``, when the parent may already be gone)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="triptych-parent-watch", daemon=True).start()


def _pool_worker_init(parent: int) -> None:
    _die_with(parent)
    _worker_init()


def local_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` local processes (spawned, so no state leaks in from the parent), each of which
    dies with this process and uses one thread (``triptych.threads.single_threaded_worker``)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_pool_worker_init,
                               initargs=(os.getpid(),))


def run_in_pool(job: ScoreJob, indices: Sequence[int], workers: int) -> Result:
    """One sample per task on a ``local_pool`` of ``workers`` processes."""
    with local_pool(workers) as pool:
        futures = {pool.submit(score_sample, job, index): index for index in indices}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()


def ray_map(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], workers: int,
            address: str | None) -> Iterator[tuple[int, Any]]:
    """``fn(*calls[i])`` as one Ray task each (a local instance, or the cluster at ``address``); yields
    ``(i, result)`` in completion order. A worker's TriptychError arrives unchanged."""
    try:
        import ray
    except ImportError as exc:
        raise TriptychError("--executor ray needs Ray", fix="pip install 'triptych[scale]' (or pip install ray)") from exc
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=workers, **options)
    remote = ray.remote(num_cpus=1)(fn)
    pending = {remote.remote(*call): index for index, call in enumerate(calls)}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done[0])
            try:
                yield index, ray.get(done[0])
            except ray.exceptions.RayTaskError as exc:
                raise (exc.cause if isinstance(exc.cause, BaseException) else exc) from None
    finally:
        for ref in pending:
            ray.cancel(ref)


def run_on_ray(job: ScoreJob, indices: Sequence[int], workers: int, address: str | None) -> Result:
    """One Ray task per sample."""
    for position, result in ray_map(_ray_score_sample, [(job, index) for index in indices], workers, address):
        yield indices[position], result


def _ray_score_sample(job: ScoreJob, index: int) -> Scored:
    _worker_init()
    return score_sample(job, index)


def check_executor(executor: str, workers: int) -> None:
    """A known executor and at least one worker, checked before a run folder is created."""
    if executor not in EXECUTORS:
        raise TriptychError(f"unknown executor {executor!r}", fix=f"use one of: {', '.join(EXECUTORS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise TriptychError(f"--workers {workers!r}: the number of worker processes must be a whole number of "
                            "at least 1", fix="pass --workers 1 to score in this process, or --workers N (N >= 2) "
                                              "for N local processes")


def run(job: ScoreJob, indices: Sequence[int], executor: str = "local", workers: int = 1,
        address: str | None = None) -> Result:
    check_executor(executor, workers)
    if executor == "ray":
        return run_on_ray(job, indices, workers, address)
    if workers == 1:
        return run_in_process(job, indices)
    return run_in_pool(job, indices, workers)
