"""Resumable, atomic, concurrent-safe runs: a killed or failed run loses nothing it finished."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from triptych.errors import TriptychError
from triptych.results import list_runs, read_run, read_samples
from triptych.scoring import score

TRIPTYCH = str(Path(sys.executable).parent / "triptych")


def _score_cmd(out: Path) -> list[str]:
    return [TRIPTYCH, "score", "--benchmark", "sample-portraits", "--method", "reference_copy", "--out", str(out)]


def _values(run_dir: Path) -> list[tuple[str, str, float]]:
    rows = read_samples(run_dir).sort_values(["sample_id", "metric"])
    return list(zip(rows.sample_id, rows.metric, rows.value))


def test_kill_9_then_the_same_command_resumes_without_recomputing(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.Popen(_score_cmd(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    parts: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        parts = sorted(out.glob("*/parts/*.parquet"))
        if len(parts) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run_dir,) = [p.parent.parent for p in parts[:1]]
    assert read_run(run_dir)["status"] == "running"
    before = {p.name: p.stat().st_mtime_ns for p in (run_dir / "parts").glob("*.parquet")}
    assert 2 <= len(before) < 8

    again = subprocess.run(_score_cmd(out), capture_output=True, text=True, check=True)
    assert f"resuming run {run_dir.name}: {len(before)} sample(s) already scored" in again.stderr
    after = {p.name: p.stat().st_mtime_ns for p in (run_dir / "parts").glob("*.parquet")}
    assert len(after) == 8
    assert all(after[name] == mtime for name, mtime in before.items()), "finished samples were recomputed"
    assert read_run(run_dir)["status"] == "complete" and len(list_runs(out)) == 1

    uninterrupted = score("sample-portraits", tmp_path / "fresh", method="reference_copy")
    assert _values(run_dir) == _values(uninterrupted)


def test_a_failing_sample_keeps_the_finished_ones_and_the_fix_resumes(tmp_path, fixtures_dir):
    pred_dir = tmp_path / "pred/tennis"
    pred_dir.mkdir(parents=True)
    frames = Path(__file__).resolve().parent.parent / "datasets/samples/tennis/frames"
    for c in (1, 6):  # good predictions for the first two triplets only, corrupt ones for the others
        shutil.copy(frames / f"{c - 1:05d}.png", pred_dir / f"{c:05d}.png")
    for c in (11, 16, 21):
        (pred_dir / f"{c:05d}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(TriptychError) as info:
        score("sample-triplets", tmp_path / "results", pred_dir=tmp_path / "pred")
    assert "00011" in info.value.message and "the 2 sample(s) already scored are kept" in info.value.fix
    (run,) = [r for r in (tmp_path / "results").iterdir()]
    assert read_run(run)["status"] == "failed" and len(list((run / "parts").glob("*.parquet"))) == 2
    for c in (11, 16, 21):
        shutil.copy(frames / f"{c - 1:05d}.png", pred_dir / f"{c:05d}.png")
    resumed = score("sample-triplets", tmp_path / "results", pred_dir=tmp_path / "pred")
    assert resumed == run and read_run(run)["status"] == "complete" and len(read_samples(run)) == 10


def test_two_concurrent_runs_into_one_folder_never_corrupt_each_other(tmp_path):
    out = tmp_path / "results"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([TRIPTYCH, "score", "--benchmark", "sample-triplets", "--method", "linear_blend",
                               "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=180) == 0, proc.stderr.read()
    runs = list_runs(out)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"complete"}
    first, second = (out / r["run_id"] for r in runs)
    assert _values(first) == _values(second)
    assert not list(out.rglob("*.tmp"))
