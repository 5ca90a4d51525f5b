"""Resumable, atomic, concurrent-safe runs: a killed or failed run loses nothing it finished."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

import triptych
from conftest import REPO
from triptych.errors import TriptychError
from triptych.registry import registry
from triptych.results import RUN_FILE, list_runs, read_run, read_samples
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
    # the temporary file of a part write that the kill cut short (atomic_write's name for it)
    (run_dir / "parts" / f".part-{len(before):06d}.parquet.k1ll3d.tmp").write_bytes(b"PAR1 half written")
    leftovers = len(list(run_dir.rglob(".*.tmp")))

    again = subprocess.run(_score_cmd(out), capture_output=True, text=True, check=True)
    assert (f"resuming run {run_dir.name}: {len(before)} part(s) reused, 0 recomputed, {8 - len(before)} not "
            f"scored yet; removed {leftovers} temporary file(s) of interrupted writes") in again.stderr
    after = {p.name: p.stat().st_mtime_ns for p in (run_dir / "parts").glob("*.parquet")}
    assert len(after) == 8
    assert all(after[name] == mtime for name, mtime in before.items()), "finished samples were recomputed"
    assert read_run(run_dir)["status"] == "complete" and len(list_runs(out)) == 1
    assert not list(out.rglob("*.tmp")), "a killed write's temporary file survived the resume"

    uninterrupted = score("sample-portraits", tmp_path / "fresh", method="reference_copy")
    assert _values(run_dir) == _values(uninterrupted)


def test_a_failing_sample_keeps_the_finished_ones_and_the_fix_resumes(tmp_path, fixtures_dir):
    pred_dir = tmp_path / "pred/tennis"
    pred_dir.mkdir(parents=True)
    frames = REPO / "datasets/samples/tennis/frames"
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


def test_two_identical_commands_at_once_make_one_run(tmp_path):
    """The second waits for the first (the request's lock), then finds its complete run up to date."""
    out = tmp_path / "results"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [TRIPTYCH, "score", "--benchmark", "sample-triplets", "--method", "linear_blend", "--out", str(out)]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    done = [proc.communicate(timeout=180) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], done
    (run,) = list_runs(out)
    assert run["status"] == "complete"
    assert done[0][0] == done[1][0]  # the same aggregates on stdout
    assert sum("is complete and every one of its 5 part(s) matches the current inputs: reused" in err
               for _, err in done) == 1
    assert not list(out.rglob("*.tmp"))


def test_two_different_requests_at_once_never_corrupt_each_other(tmp_path):
    out = tmp_path / "results"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([TRIPTYCH, "score", "--benchmark", "sample-triplets", "--method", "linear_blend",
                               "--out", str(out), *metric], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for metric in ([], ["--metric", "psnr:amt"])]
    for proc in procs:
        assert proc.wait(timeout=180) == 0, proc.stderr.read()
    runs = list_runs(out)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"complete"}
    both, psnr_only = (out / r["run_id"] for r in sorted(runs, key=lambda r: len(r["metrics"]), reverse=True))
    assert [v for v in _values(both) if v[1] == "psnr"] == _values(psnr_only)
    assert not list(out.rglob("*.tmp"))


def test_a_complete_run_is_reused_and_fresh_scores_a_new_one(tmp_path, run_cli):
    out = tmp_path / "results"
    first = score("sample-triplets", out, method="linear_blend")
    mtime = (first / "samples.parquet").stat().st_mtime_ns
    code, stdout, err = run_cli("score", "--benchmark", "sample-triplets", "--method", "linear_blend", "--out", out)
    assert code == 0 and f"run {first.name} of the same request is complete" in err and "reused" in err
    assert f"run: {first}" in err and (first / "samples.parquet").stat().st_mtime_ns == mtime
    code, again, err = run_cli("score", "--benchmark", "sample-triplets", "--method", "linear_blend", "--out", out,
                               "--fresh")
    assert code == 0 and again == stdout and "matches the current inputs" not in err
    (second,) = [r for r in list_runs(out) if r["run_id"] != first.name]
    assert _values(out / second["run_id"]) == [(s, m, v) for s, m, v in _values(first)]
    fresh_api = triptych.evaluate("sample-triplets", "linear_blend", out=out, fresh=True)
    assert len(list_runs(out)) == 3 and fresh_api.run_dir.name not in (first.name, second["run_id"])


def _triplet_predictions(pred: Path, source: Callable[[int], Path], centres=(1, 6, 11, 16, 21)) -> None:
    (pred / "tennis").mkdir(parents=True, exist_ok=True)
    for c in centres:
        shutil.copy(source(c), pred / "tennis" / f"{c:05d}.png")


def test_regenerated_predictions_are_scored_again_not_reused(tmp_path):
    """The issue's case: a --pred-dir run fails on a bad file, the user regenerates every prediction
    and reruns the same command: the parts of the old predictions are recomputed, and the final rows equal
    those of a fresh run of the new predictions (before: psnr inf from the stale parts)."""
    frames = REPO / "datasets/samples/tennis/frames"
    pred = tmp_path / "pred"
    _triplet_predictions(pred, lambda c: frames / f"{c:05d}.png")  # the ground truth: inf dB
    (pred / "tennis/00011.png").write_bytes((frames / "00011.png").read_bytes()[:3000])  # cut short
    with pytest.raises(TriptychError, match="00011"):
        score("sample-triplets", tmp_path / "results", pred_dir=pred)
    _triplet_predictions(pred, lambda c: frames / f"{c - 1:05d}.png")  # regenerated: the previous frame
    resumed = _score_logged(tmp_path / "results", pred)
    assert ("0 part(s) reused, 2 recomputed (prediction tennis/00001.png changed; prediction tennis/00006.png "
            "changed), 3 not scored yet") in resumed.stderr
    run_dir = Path(resumed.run_dir)
    fresh = score("sample-triplets", tmp_path / "fresh", pred_dir=pred)
    assert _values(run_dir) == _values(fresh)
    assert all(math.isfinite(v) for _, _, v in _values(run_dir))
    assert read_run(run_dir)["resumes"][-1]["recomputed"] == 2


@dataclasses.dataclass
class _Logged:
    run_dir: Path
    stderr: str


def _score_logged(out: Path, pred: Path) -> _Logged:
    done = subprocess.run([TRIPTYCH, "score", "--benchmark", "sample-triplets", "--pred-dir", str(pred),
                           "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return _Logged(Path(done.stderr.rsplit("run: ", 1)[1].strip()), done.stderr)


_PLUGIN = """from triptych.errors import TriptychError

class Blend:
    calls = 0

    def interpolate(self, frame0, frame1, t):
        Blend.calls += 1
        if Blend.calls == {fail_on_call}:
            raise TriptychError("out of memory on this triplet (simulated)")
        return frame0 * {w0} + frame1 * (1 - {w0})

def make():
    return Blend()

def entries():
    return {{"tilt-blend": {{"task": "frame_interpolation", "version": 1, "description": "a weighted blend",
                             "callable": "tilt_blend:make"}}}}
"""


def _install_plugin(site: Path, version: str, w0: float, fail_on_call: int) -> None:
    """A real installed distribution (module + dist-info with entry points) in ``site``."""
    for old in site.glob("tilt_blend-*.dist-info"):
        shutil.rmtree(old)
    (site / "tilt_blend.py").write_text(_PLUGIN.format(fail_on_call=fail_on_call, w0=w0))
    info = site / f"tilt_blend-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: tilt-blend\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[triptych.methods]\ntilt = tilt_blend:entries\n")


def test_a_method_whose_code_changed_is_scored_again(tmp_path):
    """A plugin method fails on the third triplet; the user fixes its code and releases 1.1; the same command
    recomputes the two parts of 1.0 and the final rows equal a fresh run of 1.1."""
    site = tmp_path / "site"
    site.mkdir()
    _install_plugin(site, "1.0", w0=0.5, fail_on_call=3)
    env = {**os.environ, "PYTHONPATH": str(site)}
    command = [TRIPTYCH, "score", "--benchmark", "sample-triplets", "--method", "tilt-blend", "--out"]
    failed = subprocess.run([*command, str(tmp_path / "results")], capture_output=True, text=True, env=env)
    assert failed.returncode == 2 and "out of memory on this triplet" in failed.stderr, failed.stderr
    _install_plugin(site, "1.1", w0=0.8, fail_on_call=0)
    resumed = subprocess.run([*command, str(tmp_path / "results")], capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "0 part(s) reused, 2 recomputed (method.plugin tilt-blend 1.0 -> tilt-blend 1.1), 3 not scored yet" \
        in resumed.stderr
    fresh = subprocess.run([*command, str(tmp_path / "fresh")], capture_output=True, text=True, env=env)
    assert resumed.stdout == fresh.stdout
    (run,) = list_runs(tmp_path / "results")
    (fresh_run,) = list_runs(tmp_path / "fresh")
    assert _values(tmp_path / "results" / run["run_id"]) == _values(tmp_path / "fresh" / fresh_run["run_id"])
    assert set(read_samples(tmp_path / "results" / run["run_id"]).method_version) == {"1 (tilt-blend 1.1)"}


def test_a_registered_method_whose_version_changed_is_scored_again(tmp_path, monkeypatch, capsys):
    out = tmp_path / "results"
    first = score("sample-triplets", out, method="linear_blend")
    run = read_run(first)
    for part in ("part-000003", "part-000004"):  # a crash after three triplets, as after kill -9
        (first / "parts" / f"{part}.parquet").unlink()
    (first / RUN_FILE).write_text(json.dumps({**run, "status": "running"}))
    blend = registry().method("linear_blend")
    monkeypatch.setitem(registry().methods, "linear_blend", dataclasses.replace(blend, version=2))
    capsys.readouterr()
    assert score("sample-triplets", out, method="linear_blend") == first
    assert "0 part(s) reused, 3 recomputed (method.version 1 -> 2), 2 not scored yet" in capsys.readouterr().err
    assert set(read_samples(first).method_version) == {"2"} and read_run(first)["method_version"] == "2"
