"""Thread policy of a scoring process: no oversubscription (docs/performance.md).

A process scores with ``threads`` cores, by default the CPUs it may run on (``os.sched_getaffinity``, which
a container, ``taskset`` or a batch scheduler sets; ``--threads N`` on ``measure`` and ``score``). Either
the libraries' own thread pools use them (one sample at a time), or ``ordered_map`` runs one sample per
thread and every library runs single-threaded inside it, never both: on a busy machine, intra-op threads
contending with each other and with the load turned a 1.25x win into a 4x loss (issue #24). Worker
processes (``score --workers N``) each get one thread (``single_threaded_worker``).

The libraries read their thread counts in two ways: OpenMP / MKL / OpenBLAS from the environment when they
are first loaded (so it is set before torch is imported, which happens lazily), OpenCV and an
already imported torch through their setters.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence, TypeVar

from triptych.allocator import keep_freed_memory
from triptych.errors import InputError

Item = TypeVar("Item")
Result = TypeVar("Result")
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_threads(threads: int | None) -> int:
    """``--threads``: a whole number of at least 1, or None for ``available_cpus()``."""
    if threads is None:
        return available_cpus()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"--threads {threads!r}: the number of threads must be a whole number of at least 1",
                         fix=f"leave it out to use the {available_cpus()} CPUs this process may run on")
    return threads


def set_library_threads(threads: int) -> None:
    """Make torch (intra-op), OpenMP / MKL / OpenBLAS and OpenCV use ``threads`` threads from now on."""
    for name in THREAD_ENV:
        os.environ[name] = str(threads)
    import cv2

    cv2.setNumThreads(threads)
    if "torch" in sys.modules:  # imported already: the environment is read only at its import
        sys.modules["torch"].set_num_threads(threads)


def configure_scoring_process(threads: int) -> None:
    """A process that scores: ``threads`` threads for the libraries, and freed memory kept for reuse
    (``triptych.allocator``)."""
    keep_freed_memory()
    set_library_threads(threads)


def single_threaded_worker() -> None:
    """A worker process of a pool: one thread for every library (N workers use N cores)."""
    configure_scoring_process(1)


def ordered_map(fn: Callable[[Item], Result], items: Sequence[Item], threads: int) -> Iterator[Result]:
    """``fn`` of each item, in the items' order, computed by ``threads`` threads (the libraries
    single-threaded meanwhile: ``set_library_threads(1)``), or in this thread when ``threads`` is 1.

    Decoding (PIL), OpenCV and numpy release the GIL, so frames are scored in parallel. Leaving the
    iteration early (an error, Ctrl-C) cancels the items not yet started."""
    if threads == 1 or len(items) < 2:
        yield from map(fn, items)
        return
    set_library_threads(1)
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="triptych-score")
    try:
        yield from pool.map(fn, items)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
