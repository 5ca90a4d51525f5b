"""``triptych doctor`` on this machine's offline state: what is installed, present and missing, and what each
missing piece blocks, through the real CLI."""

from __future__ import annotations

import json
import platform
import sys

import torch

from conftest import REPO


def test_doctor_reports_python_torch_weights_and_data(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))  # an empty weights cache
    monkeypatch.delenv("TRIPTYCH_DATASETS", raising=False)
    monkeypatch.setitem(sys.modules, "ray", None)  # the 'scale' extra not importable
    code, out, err = run_cli("doctor")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"python     {platform.python_version()} (")
    assert lines[2].startswith(f"torch      {torch.__version__}, device "
                               f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu'}")
    assert "offline    yes" in out  # the test environment sets TRIPTYCH_OFFLINE
    assert "  MISSING  ray               blocks --executor ray (pip install -e '.[scale]')" in lines
    assert any(line.startswith("  ok       cv2") for line in lines)
    (amt_s,) = [line for line in lines if line.split()[1:2] == ["amt_s"]]
    assert amt_s.split()[0] == "MISSING" and "unpinned" in amt_s and amt_s.endswith("blocks method amt-s")
    (inception,) = [line for line in lines if line.split()[1:2] == ["inception_fid"]]
    assert "sha256 6726825d0af5" in inception and inception.endswith("blocks fid:clean, frame_fid:devil, kid:clean")
    assert f"data       {REPO / 'datasets'} (from the checkout's datasets/)" in lines
    assert any(line.startswith("  ok       sample-tennis") and "manifests/sample-tennis.json present" in line
               for line in lines)


def test_doctor_names_what_a_missing_data_root_blocks_and_json_has_the_fields(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_DATASETS", str(tmp_path / "nowhere"))
    code, out, err = run_cli("doctor", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["data"]["datasets"] == str(tmp_path / "nowhere")
    assert report["data"]["datasets_from"] == "TRIPTYCH_DATASETS"
    tennis = next(b for b in report["data"]["benchmarks"] if b["name"] == "sample-tennis")
    assert tennis == {"name": "sample-tennis", "ready": False,
                      "state": "missing manifest manifests/sample-tennis.json: blocks 'score --benchmark sample-tennis'"}
    assert report["torch"]["version"] == torch.__version__
    weights = {w["name"]: w for w in report["weights"]}
    assert weights["inception_fid"]["pinned"] is True and weights["amt_s"]["pinned"] is False
    assert {"module", "found", "extra", "blocks"} <= set(report["extras"][0])
