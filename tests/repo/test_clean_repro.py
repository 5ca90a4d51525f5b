"""`dvc repro` on a fresh clone changes no tracked file, and `dvc metrics show` fits 120 columns (issue 20).

The clone is of the committed HEAD (what CI checks out); the stages run with their defaults on the embedded
sample, offline, with this interpreter's environment on PATH, as a new user runs them. dvc.lock holds only
outputs that are the same on every machine (dvc.yaml), so a stale lock is the one way this test fails: then
run `dvc repro` and commit dvc.lock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

METRICS_WIDTH = 120


def _run(cwd: Path, *args: str) -> str:
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", ""), "DVC_NO_ANALYTICS": "1",
           "COLUMNS": "200"}
    result = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_dvc_repro_leaves_a_fresh_clone_clean_and_metrics_show_is_narrow(tmp_path: Path) -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    _run(tmp_path, "git", "clone", "-q", str(REPO), str(clone))
    _run(clone, "dvc", "repro")
    status = _run(clone, "git", "status", "--porcelain")
    diff = _run(clone, "git", "diff", "--stat")
    assert status == "", (f"dvc repro changed tracked files of a fresh clone:\n{status}{diff}"
                          "if only dvc.lock changed, it is stale: run `dvc repro` and commit dvc.lock")

    shown = _run(clone, "dvc", "metrics", "show")
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= METRICS_WIDTH, shown
    # one row per demo run, its summary metrics equal to the leaderboard's reproduced rows (rounded by DVC)
    rows = json.loads((clone / "datasets/build/leaderboard.json").read_text())["rows"]
    reproduced = [r for r in rows if r["source"] == "reproduced"]
    assert {(r["benchmark"], r["method"]) for r in reproduced} == {
        ("sample-tennis", "mean_fill"), ("sample-triplets", "linear_blend"),
        ("sample-portraits", "reference_copy"), ("sample-portraits", "other_id")}
    header = lines[0].split()
    assert header == ["Path", "face_sim", "psnr", "ssim"], shown
    for r in reproduced:
        line = next(x for x in lines if f"datasets/build/metrics/{r['benchmark']}/{r['method']}.json" in x)
        assert str(round(r["value"], 5)) in line.split(), (r, line)
    plots = json.loads(_run(clone, "dvc", "plots", "show", "--json"))
    assert "datasets/build/samples.csv" in plots["data"]
