"""The thread policy of issue #24 (triptych.threads, docs/performance.md): no oversubscription.

Worker processes of ``score --workers N`` run every library on one thread, set before torch is imported;
``measure`` uses the CPUs of its affinity mask unless ``--threads`` says otherwise, scores image pairs on
that many threads with the libraries single-threaded inside, and gives the same values in the same order
as one thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import REPO
from triptych.errors import InputError
from triptych.executors import local_pool
from triptych.threads import available_cpus, check_threads, ordered_map

SAMPLE = REPO / "datasets/samples/tennis/frames"
TRIPTYCH = str(Path(sys.executable).parent / "triptych")


def _library_threads() -> dict:
    """Inside a worker (after its initializer; this module's import loads torch): each library's threads."""
    import cv2
    import torch

    return {"torch": torch.get_num_threads(), "cv2": cv2.getNumThreads(),
            **{name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}


def test_each_worker_process_uses_one_thread_for_every_library():
    with local_pool(2) as pool:
        probes = [pool.submit(_library_threads).result() for _ in range(2)]
    for probe in probes:
        assert probe == {"torch": 1, "cv2": 1, "OMP_NUM_THREADS": "1",
                         "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def test_threads_default_to_the_affinity_mask_and_refuse_nonsense():
    assert check_threads(None) == available_cpus() == len(os.sched_getaffinity(0))
    assert check_threads(3) == 3
    for bad in (0, -2, True, 1.5):
        with pytest.raises(InputError, match="--threads"):
            check_threads(bad)


def test_ordered_map_keeps_the_order_runs_libraries_single_threaded_and_stops_on_an_error():
    import cv2

    seen = []

    def work(i: int) -> tuple[int, int, str]:
        if i == 5:
            raise InputError("item 5 is bad")
        seen.append(i)
        return i, cv2.getNumThreads(), threading.current_thread().name

    out = list(ordered_map(work, list(range(5)), 2))
    assert [o[0] for o in out] == list(range(5)) and {o[1] for o in out} == {1}
    assert all(name.startswith("triptych-score") for _, _, name in out)
    seen.clear()
    with pytest.raises(InputError, match="item 5 is bad"):
        list(ordered_map(work, list(range(5, 400)), 2))
    assert len(seen) < 395  # the items after the error were cancelled, not all computed


def _measure(threads: list[str], affinity: str | None = None) -> dict:
    prefix = ["taskset", "-c", affinity] if affinity is not None else []
    done = subprocess.run([*prefix, TRIPTYCH, "measure", "ssim", "--variant", "win65", "--pred", str(SAMPLE),
                           "--gt", str(SAMPLE), "--json", "--quiet", *threads], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_measure_on_several_threads_gives_the_values_of_one_thread_in_order(tmp_path):
    one, two = _measure(["--threads", "1"]), _measure(["--threads", "2"])
    assert one["per_sample"] == two["per_sample"] and one["aggregate"] == two["aggregate"]
    assert [row["sample_id"] for row in two["per_sample"]] == sorted(p.stem for p in SAMPLE.glob("*.png"))
    done = subprocess.run([TRIPTYCH, "measure", "psnr", "--variant", "e2fgvi", "--pred", str(SAMPLE), "--gt",
                           str(SAMPLE), "--threads", "0"], capture_output=True, text=True)
    assert done.returncode == 2 and "--threads 0" in done.stderr and "fix:" in done.stderr
