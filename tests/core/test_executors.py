"""Determinism across executors and worker counts: the same rows, bit for bit, however samples are spread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from triptych.errors import TriptychError
from triptych.results import read_run, read_samples
from triptych.scoring import score


def _rows(run_dir):
    rows = read_samples(run_dir)
    return list(zip(rows.sample_id, rows.metric, rows.metric_variant, rows.value))


@pytest.mark.parametrize("bench,method", [("sample-triplets", "linear_blend"), ("sample-portraits", "other_id")])
def test_two_local_workers_give_the_rows_of_one(tmp_path, bench, method):
    one = score(bench, tmp_path / "one", method=method)
    two = score(bench, tmp_path / "two", method=method, workers=2)
    assert _rows(one) == _rows(two)
    assert read_run(two)["executor"] == {"name": "local", "workers": 2, "ray_address": None}


def test_ray_gives_the_rows_of_the_local_executor(tmp_path):
    pytest.importorskip("ray")
    local = score("sample-triplets", tmp_path / "local", method="linear_blend")
    on_ray = score("sample-triplets", tmp_path / "ray", method="linear_blend", executor="ray", workers=2)
    assert _rows(local) == _rows(on_ray)


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_an_error_in_a_worker_keeps_its_message_and_fix(tmp_path, executor):
    if executor == "ray":
        pytest.importorskip("ray")
    (tmp_path / "pred/tennis").mkdir(parents=True)
    for c in (1, 6, 11, 16, 21):  # every prediction present (checked up front), none decodes
        (tmp_path / f"pred/tennis/{c:05d}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(TriptychError) as info:
        score("sample-triplets", tmp_path / "r", pred_dir=tmp_path / "pred", executor=executor, workers=2)
    # two workers: whichever corrupt middle frame fails first is the one reported (centres 1, 6, 11, 16, 21)
    assert any(f"{c:05d}.png" in info.value.message for c in (1, 6, 11, 16, 21))
    # a worker may fail before any sample is scored (then no run is kept) or after the other kept some
    kept = [run for run in (tmp_path / "r").iterdir() if run.is_dir()] if (tmp_path / "r").is_dir() else []
    if kept:
        assert "the same command resumes" in info.value.fix
    else:
        assert "no sample was scored, so no run was kept" in info.value.fix


def test_unknown_executor_is_refused(tmp_path):
    with pytest.raises(TriptychError, match="unknown executor 'dask'"):
        score("sample-triplets", tmp_path, method="linear_blend", executor="dask")


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids of every process on this machine (from /proc)."""
    found: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        found.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return found


def _descendants(pid: int) -> set[int]:
    children, found, todo = _children(), set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    """Running (a zombie that nobody reaps in a container counts as gone: it holds no memory)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_a_two_worker_parent_leaves_no_process_behind(tmp_path):
    """A real ``triptych score --workers 2`` killed with SIGKILL while its workers score: within seconds no
    worker and no resource tracker of it is left (before: both ~700 MB workers stayed forever)."""
    out = tmp_path / "results"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "triptych"), "score", "--benchmark",
                             "sample-portraits", "--method", "reference_copy", "--workers", "2", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    family: set[int] = set()
    while time.monotonic() < deadline and proc.poll() is None:
        family = _descendants(proc.pid)
        workers = [p for p in family if b"spawn_main" in _cmdline(p)]
        if len(workers) == 2 and list(out.glob("*/parts/*.parquet")):  # both started, one sample scored
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    family = _descendants(proc.pid)
    assert len(family) >= 3  # two workers and the resource tracker
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p) for p in family):
        time.sleep(0.1)
    survivors = {p: _cmdline(p)[:120] for p in family if _alive(p)}
    for pid in survivors:  # do not leave them running if the test fails
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"processes outlived their parent: {survivors}"
    resumed = subprocess.run([str(Path(sys.executable).parent / "triptych"), "score", "--benchmark",
                              "sample-portraits", "--method", "reference_copy", "--out", str(out)],
                             capture_output=True, text=True)
    assert resumed.returncode == 0 and "part(s) reused" in resumed.stderr, resumed.stderr


@pytest.mark.parametrize("count,workers,sizes", [(80, 2, [10] * 8), (5, 2, [1] * 5), (10, 3, [1] * 10),
                                                 (509, 1, [128] * 3 + [125])])
def test_ray_chunks_cover_every_call_once_in_order(count, workers, sizes):
    from triptych.executors import chunks

    cut = chunks(count, workers)
    assert [len(c) for c in cut] == sizes
    assert [p for c in cut for p in c] == list(range(count))


def test_executors_run_any_function_in_process_and_in_a_pool():
    """The executor is a generic map: ``fn(*call)`` by position, whatever the function."""
    from triptych.executors import run

    calls = [(-3,), (4,), (-5,)]
    assert sorted(run(abs, calls)) == sorted(run(abs, calls, workers=2)) == [(0, 3), (1, 4), (2, 5)]
