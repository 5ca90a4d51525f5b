"""``triptych list`` and ``triptych runs``: sorted one-line listings that fit the terminal (at most 100
columns), structured ``--json``, full run ids and unique-prefix lookup."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import REPO
from triptych.registry import registry
from triptych.results import RunWriter
from triptych.weights import weights_registry

TRIPTYCH = str(REPO / ".venv/bin/triptych") if (REPO / ".venv/bin/triptych").is_file() else "triptych"


def _expected_names(kind: str) -> list[str]:
    reg = registry()
    if kind == "metrics":
        return sorted(f"{m.name}:{v}" for m in reg.metrics.values() for v in m.variants)
    return sorted(weights_registry() if kind == "weights" else getattr(reg, kind))


@pytest.mark.parametrize("columns", [80, 100])
@pytest.mark.parametrize("kind", ["metrics", "benchmarks", "methods", "weights"])
def test_list_is_one_sorted_line_per_entry_within_the_terminal_width(kind, columns, run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, err = run_cli("list", kind)
    assert code == 0, err
    header, *lines = out.splitlines()
    assert header.split()[0] in ("metric:variant", "benchmark", "method", "name")
    assert [line.split()[0] for line in lines] == _expected_names(kind)  # one line each, sorted
    assert max(len(line) for line in [header, *lines]) <= columns
    assert any(line.endswith("…") for line in lines)  # descriptions are cut, not wrapped onto more lines


def test_a_wide_terminal_still_gets_at_most_100_columns_and_a_pipe_gets_100(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "240")
    code, wide, _ = run_cli("list", "metrics")
    assert code == 0 and max(len(line) for line in wide.splitlines()) == 100
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    piped = subprocess.run([TRIPTYCH, "list", "metrics"], capture_output=True, text=True, env=env, check=True)
    assert piped.stdout == wide  # not a terminal: the 100-column form, never one word per line
    assert len(piped.stdout.splitlines()) == 1 + sum(len(m.variants) for m in registry().metrics.values())


def test_list_json_has_structured_fields(run_cli):
    code, out, _ = run_cli("list", "metrics", "--json")
    records = json.loads(out)
    assert code == 0 and len(records) == sum(len(m.variants) for m in registry().metrics.values())
    (psnr,) = [r for r in records if (r["name"], r["variant"]) == ("psnr", "e2fgvi")]
    spec = registry().metric("psnr")
    assert psnr["version"] == spec.variants["e2fgvi"].version == 1
    assert psnr["description"] == spec.variants["e2fgvi"].description  # whole, not cut
    assert psnr["direction"] == "higher" and psnr["unit"] == "dB" and "video_inpainting" in psnr["tasks"]
    code, out, _ = run_cli("list", "benchmarks", "--json")
    (tennis,) = [r for r in json.loads(out) if r["name"] == "sample-tennis"]
    assert tennis["metrics"] == ["psnr:e2fgvi", "ssim:win65"] and tennis["variants"] == ["e2fgvi"]
    assert tennis["task"] == "video_inpainting" and tennis["version"] == 1
    (ewarp_files,) = [r for r in records if (r["name"], r["variant"]) == ("ewarp", "files")]
    assert ewarp_files["inputs"] == registry().metric("ewarp").variant("files").inputs.declared() == {
        "flow_dir": "required"} and psnr["inputs"] == {}
    code, out, _ = run_cli("list", "methods")
    (amt_s,) = [line for line in out.splitlines() if line.split()[0] == "amt-s"]
    assert "weights?,device?" in amt_s  # the declared inputs, an optional one marked ?
    code, out, _ = run_cli("list", "methods", "--json")
    (amt_s,) = [r for r in json.loads(out) if r["name"] == "amt-s"]
    assert amt_s["inputs"] == {"weights": "optional", "device": "optional"}
    code, out, _ = run_cli("list", "weights", "--json")
    assert [r["name"] for r in json.loads(out)] == sorted(weights_registry())


def _run(results, run_id: str) -> None:
    writer = RunWriter(results, run_id)
    writer.begin({"task": "frame_interpolation", "benchmark": "sample-triplets", "method": "linear_blend"})
    writer.finish({"metrics": [{"metric": "psnr", "variant": "amt"}]})


def test_runs_list_shows_full_ids_and_show_takes_a_unique_prefix(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    ids = ["20261206T060000Z-sample-triplets-a-very-long-method-label-for-a-test-0a1b2c",
           "20261206T060000Z-sample-triplets-a-very-long-method-label-for-a-test-0a9f9f",
           "20261206T070000Z-sample-triplets-linear_blend-777777"]
    for run_id in ids:
        _run(tmp_path, run_id)
    code, out, _ = run_cli("runs", "list", "--results", tmp_path)
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == sorted(ids, reverse=True)
    code, out, err = run_cli("runs", "show", "20261206T07", "--results", tmp_path, "--json")
    assert code == 0 and json.loads(out)["run_id"] == ids[2], err
    code, out, err = run_cli("runs", "show", ids[1][:-3], "--results", tmp_path, "--json")
    assert code == 0 and json.loads(out)["run_id"] == ids[1], err
    code, out, err = run_cli("runs", "show", "20261206T06", "--results", tmp_path)
    assert (code, out) == (2, "")
    assert "is a prefix of 2 runs" in err and ids[0] in err and ids[1] in err and "give more of the run id" in err
    code, out, err = run_cli("runs", "show", "2027", "--results", tmp_path)
    assert (code, out) == (2, "") and "no run '2027'" in err


def test_list_metrics_shows_each_variants_source(run_cli, monkeypatch):
    """The text listing's last column is the source a variant follows (issue 22): the new toolkit variants
    are listed with the repository and commit they reproduce."""
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = run_cli("list", "metrics")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    for name, source in (("ssim:pytorch_msssim", "VFIBenchmark (PerVFI) @ 40a05ec"),
                         ("ms_ssim:pytorch_msssim", "VFIBenchmark (PerVFI) @ 40a05ec"),
                         ("flolpips:dis", "VFIBenchmark (PerVFI) @ 40a05ec"),
                         ("flolpips:pwcnet", "VFIBenchmark (PerVFI) @ 40a05ec"), ("pvcs:devil", "DEVIL @ d339a12"),
                         ("pcons_ssim:devil", "DEVIL @ d339a12"), ("ewarp_masked:files", "DEVIL @ d339a12"),
                         ("frame_fid:devil", "DEVIL @ d339a12"), ("lpips_masked:devil", "DEVIL / video-inpainting-evaluation @ d")):
        assert source in lines[name], lines[name]
