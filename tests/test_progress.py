"""Progress on ``score`` / ``demo``: shown on a terminal or with ``--progress`` (one line per sample in a log),
never with ``--quiet`` or into a pipe by default; Ctrl-C prints what was saved and the command that resumes."""

from __future__ import annotations

import os
import signal
import subprocess

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
