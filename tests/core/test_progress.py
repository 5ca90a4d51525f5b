"""Progress on ``score`` / ``demo`` / ``measure`` and the DVC stages (standardize_*, per-image ID stages): shown on
a terminal or with ``--progress`` (one line per item in a log), never with ``--quiet`` or into a pipe by default;
Ctrl-C prints what was saved and the command that resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from conftest import REPO
from triptych.results import list_runs

TRIPTYCH = str(REPO / ".venv/bin/triptych") if (REPO / ".venv/bin/triptych").is_file() else "triptych"


def test_progress_lines_only_when_asked_and_never_with_quiet(tmp_path, run_cli):
    score = ["score", "--benchmark", "sample-triplets", "--method", "linear_blend", "--metric", "psnr:amt"]
    code, out, err = run_cli(*score, "--out", tmp_path / "a", "--progress")
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("sample-triplets linear_blend: ")]
    assert [line.split(", ")[0] for line in lines] == [f"sample-triplets linear_blend: {i}/5 samples"
                                                       for i in range(1, 6)]
    assert lines[-1].endswith(", tennis/00021") and " samples/s, ETA " in lines[-1]
    assert out.startswith("sample-triplets  linear_blend  psnr:amt v1  21.6846 dB")
    for extra in ([], ["--progress", "--quiet"]):  # stderr is not a terminal here: quiet unless --progress
        code, _, err = run_cli(*score, "--out", tmp_path / f"b{len(extra)}", *extra)
        assert code == 0 and "samples/s" not in err


def test_ctrl_c_says_what_was_saved_and_the_command_that_resumes(tmp_path):
    args = ["score", "--benchmark", "sample-portraits", "--method", "reference_copy", "--out", str(tmp_path),
            "--progress"]
    proc = subprocess.Popen([TRIPTYCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if ": 2/8 samples" in line:
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, "".join(seen) + rest
    (last,) = [line for line in rest.splitlines() if line.startswith("interrupted: ")]
    (run,) = list_runs(tmp_path)
    saved = int(last.split("interrupted: ")[1].split(" of 8")[0])
    assert 2 <= saved < 8
    assert last == (f"interrupted: {saved} of 8 sample(s) saved in {tmp_path / run['run_id']}; resume with: "
                    f"triptych {' '.join(args)}")
    resumed = subprocess.run([TRIPTYCH, *args], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming run {run['run_id']}: {saved} part(s) reused, 0 recomputed, {8 - saved} not scored yet" \
        in resumed.stderr
    assert resumed.stdout.startswith("sample-portraits  reference_copy  face_sim:dlib v1")


def _stage(module: str, *args) -> list[str]:
    """The command line of a DVC stage script, as dvc.yaml runs it."""
    return [sys.executable, "-m", f"triptych.pipelines.{module}", *(str(a) for a in args)]


def test_measure_progress_per_sample_only_when_asked(run_cli):
    frames = REPO / "datasets/samples/tennis/frames"
    measure = ["measure", "psnr", "--variant", "e2fgvi", "--pred", frames, "--gt", frames]
    code, out, err = run_cli(*measure, "--progress")
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("measure psnr:e2fgvi: ")]
    assert [line.split(", ")[0] for line in lines] == [f"measure psnr:e2fgvi: {i}/24 samples" for i in range(1, 25)]
    assert lines[-1].endswith(", 00023") and " samples/s, ETA " in lines[-1]
    assert "psnr (e2fgvi v1): inf" in out  # a frame against itself
    for extra in ([], ["--progress", "--quiet"]):
        code, _, err = run_cli(*measure, *extra)
        assert code == 0 and "samples/s" not in err


def test_standardize_stages_show_videos_and_files_hashed(tmp_path):
    vos = subprocess.run(_stage("standardize_vos", "--name", "sample-tennis", "--frames",
                                "datasets/samples/{video}/frames", "--masks", "datasets/samples/{video}/masks",
                                "--split-list", "datasets/splits/sample-tennis.json", "--variants", "e2fgvi",
                                "--out", tmp_path / "vos", "--progress"), cwd=REPO, capture_output=True, text=True)
    assert vos.returncode == 0, vos.stderr
    assert "standardize_vos sample-tennis: 1/1 videos, " in vos.stderr and vos.stderr.count(", tennis\n") == 1
    assert "manifest sample-tennis/e2fgvi: 48/48 files, " in vos.stderr
    vfi = subprocess.run(_stage("standardize_vfi", "--name", "sample-triplets", "--root", "datasets/samples",
                                "--video", "tennis/frames", "--centers", "1,6,11,16,21", "--out", tmp_path / "vfi"),
                         cwd=REPO, capture_output=True, text=True)
    assert vfi.returncode == 0 and "files/s" not in vfi.stderr  # not a terminal, no --progress: quiet


def test_id_stage_progress_ctrl_c_and_resume(tmp_path):
    """id_detect counts images (done / total, rate, ETA, current file); Ctrl-C says how many are saved in its
    cache and the command that resumes (under DVC: dvc repro id_detect); the rerun computes only the rest."""
    out = tmp_path / "id"
    subprocess.run(_stage("id_collect", "--root", REPO / "datasets/samples/portraits", "--out", out), check=True,
                   capture_output=True)
    args = ["--out", out, "--progress"]
    proc = subprocess.Popen(_stage("id_detect", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "DVC_STAGE": "id_detect"})
    for line in proc.stderr:
        if line.startswith("id_detect: 2/6 images, "):
            assert " images/s, ETA " in line and line.rstrip().endswith((".jpg", ".png"))
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, rest
    (last,) = [line for line in rest.splitlines() if line.startswith("interrupted: ")]
    saved = int(last.split("interrupted: ")[1].split(" of 6")[0])
    assert 2 <= saved < 6
    assert last == f"interrupted: {saved} of 6 images done, each saved in {out / 'cache/id_detect'}; " \
                   "resume with: dvc repro id_detect"
    resumed = subprocess.run(_stage("id_detect", *args, "--timing", tmp_path / "t.json"), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "t.json").read_text())["computed"] == 6 - saved
    assert f"id_detect: {saved + 1}/6 images, " in resumed.stderr and "id_detect: 1/6 images" not in resumed.stderr
    quiet = subprocess.run(_stage("id_detect", "--out", out, "--quiet"), capture_output=True, text=True)
    assert quiet.returncode == 0 and "images/s" not in quiet.stderr
