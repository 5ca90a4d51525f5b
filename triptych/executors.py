"""A generic map: ``fn(*call)`` for each call, in this process, in a pool of local worker processes, or on a
Ray cluster; results come back as ``(position, result)`` in completion order (docs/architecture.md, kernel).

The executor knows nothing of what it runs: scoring passes ``triptych.scoring.score_sample`` and one
``(job, index)`` per sample, a pipeline stage its per-image function (``pipelines/stage_io.py``). The caller
writes each result as it arrives (a scored sample's rows as its own part, named by the sample's index), so
neither the executor nor the number of workers can change a number or the order of the rows.

Local workers never outlive the process that started them: each asks the kernel for SIGKILL when its
parent dies (Linux ``PR_SET_PDEATHSIG``) and watches its parent's pid, so a ``kill -9`` of ``triptych
score --workers N`` leaves no worker (and so no resource tracker, which exits with its last client).

On Ray, one actor per worker runs chunks of calls (docs/scaling.md): whatever ``fn`` caches in its process (a
benchmark, metrics and a method, loaded once) stays loaded for every chunk the actor runs, and each chunk's
results stream back as soon as the chunk is done, the calls a chunk finished before one of them failed
included, then that call's error, unchanged.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any, Callable, Iterator, Sequence

from triptych.errors import TriptychError

EXECUTORS = ("local", "ray")
Completed = Iterator[tuple[int, Any]]  # (position of the call, its result), in completion order


def run_in_process(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> Completed:
    for position, call in enumerate(calls):
        yield position, fn(*call)


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


def run_in_pool(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], workers: int) -> Completed:
    """One call per task on a ``local_pool`` of ``workers`` processes."""
    with local_pool(workers) as pool:
        futures = {pool.submit(fn, *call): position for position, call in enumerate(calls)}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()


CHUNKS_PER_WORKER = 4  # a worker's share is cut in this many chunks: short tails, few round trips


def chunks(count: int, workers: int) -> list[range]:
    """Positions ``0..count-1`` cut in consecutive chunks, about ``CHUNKS_PER_WORKER`` per worker."""
    size = max(1, -(-count // (workers * CHUNKS_PER_WORKER)))
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


class _ChunkWorker:
    """A Ray actor: one process, one thread, that runs chunks of calls and keeps what ``fn`` caches."""

    def __init__(self) -> None:
        _worker_init()

    def run(self, fn: Callable[..., Any], calls: list[tuple[int, tuple[Any, ...]]],
            ) -> tuple[list[tuple[int, Any]], BaseException | None]:
        """``(position, fn(*call))`` for each call up to the first that raises, and that call's error."""
        done = []
        for position, call in calls:
            try:
                done.append((position, fn(*call)))
            except Exception as exc:  # returned, so the calls done before it are kept
                return done, exc
        return done, None


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise TriptychError("--executor ray needs Ray", fix="pip install 'triptych[scale]' (or pip install ray)") from exc
    return ray


def ray_map(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], workers: int, address: str | None) -> Completed:
    """``fn(*calls[i])`` on ``workers`` Ray actors (a local instance, or the cluster at ``address``), each
    given one chunk at a time (``chunks``); yields ``(i, result)`` as each chunk comes back. A call's error
    arrives unchanged, after the results of the calls its chunk finished before it."""
    ray = _ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=workers, **options)
    todo = [[(p, calls[p]) for p in chunk] for chunk in chunks(len(calls), workers)]
    todo.reverse()  # popped from the end: the first chunks first
    actor = ray.remote(num_cpus=1)(_ChunkWorker)
    actors = [actor.remote() for _ in range(min(workers, len(todo)))]
    fn_ref = ray.put(fn)
    pending = {}
    for worker in actors:
        pending[worker.run.remote(fn_ref, todo.pop())] = worker
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            worker = pending.pop(ready[0])
            try:
                done, error = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:
                raise (exc.cause if isinstance(exc.cause, BaseException) else exc) from None
            if todo and error is None:
                pending[worker.run.remote(fn_ref, todo.pop())] = worker
            yield from done
            if error is not None:
                raise error
    finally:
        for worker in actors:  # its chunk in flight, if any, ends with it
            ray.kill(worker)


def check_executor(executor: str, workers: int) -> None:
    """A known executor and at least one worker, checked before a run folder is created."""
    if executor not in EXECUTORS:
        raise TriptychError(f"unknown executor {executor!r}", fix=f"use one of: {', '.join(EXECUTORS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise TriptychError(f"--workers {workers!r}: the number of worker processes must be a whole number of "
                            "at least 1", fix="pass --workers 1 to score in this process, or --workers N (N >= 2) "
                                              "for N local processes")


def run(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], executor: str = "local", workers: int = 1,
        address: str | None = None) -> Completed:
    """``fn(*call)`` for each of ``calls`` (``fn`` importable by name, the calls picklable, unless run in this
    process): in this process (local, 1 worker), on a ``local_pool`` (local, N workers) or on Ray."""
    check_executor(executor, workers)
    if executor == "ray":
        return ray_map(fn, calls, workers, address)
    if workers == 1:
        return run_in_process(fn, calls)
    return run_in_pool(fn, calls, workers)
