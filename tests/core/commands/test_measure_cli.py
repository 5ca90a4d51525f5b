"""``triptych measure``: the JSON document, the fixture values through the CLI, and clear errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def test_measure_ssim_win65_reproduces_the_inpainting_fixture(run_cli, fixtures_dir, inpainting_expected):
    tennis = fixtures_dir / "inpainting/tennis"
    code, out, _ = run_cli("measure", "ssim", "--variant", "win65", "--pred", tennis / "pred", "--gt", tennis / "gt",
                           "--json")
    assert code == 0
    doc = json.loads(out)
    assert (doc["metric"], doc["metric_variant"], doc["metric_version"]) == ("ssim", "win65", 1)
    tol = inpainting_expected["tolerances"]["ssim_abs"]
    got = [row["value"] for row in doc["per_sample"]]
    assert [row["sample_id"] for row in doc["per_sample"]] == [f"{i:05d}" for i in range(24)]
    assert got == pytest.approx(inpainting_expected["ssim"]["per_frame"], abs=tol)
    assert doc["aggregate"]["n"] == 24
    assert doc["aggregate"]["value"] == pytest.approx(inpainting_expected["ssim"]["video_mean"], abs=tol)


def _triplet_layout(fixtures_dir: Path, vfi_expected: dict, tmp_path: Path) -> tuple[Path, Path]:
    """pred/<triplet>/im.png and gt/<triplet>/im.png, so folders pair by relative path."""
    for triplet in vfi_expected["metric_fixture"]["triplets"]:
        for side, name in (("pred", "pred.png"), ("gt", "gt.png")):
            target = tmp_path / side / triplet["name"]
            target.mkdir(parents=True)
            shutil.copy(fixtures_dir / "vfi" / triplet["name"] / name, target / "im.png")
    return tmp_path / "pred", tmp_path / "gt"


@pytest.mark.parametrize("metric,variant", [("ssim", "matlab3d"), ("psnr", "amt")])
def test_measure_amt_variants_reproduce_the_vfi_fixture(run_cli, fixtures_dir, vfi_expected, tmp_path, metric,
                                                        variant):
    pred, gt = _triplet_layout(fixtures_dir, vfi_expected, tmp_path)
    code, out, _ = run_cli("measure", metric, "--variant", variant, "--pred", pred, "--gt", gt, "--json")
    assert code == 0
    doc = json.loads(out)
    tol = vfi_expected["suggested_tolerances"]["ssim_abs" if metric == "ssim" else "psnr_db_abs"]
    want = {t["name"]: t["pred_png_vs_gt"][metric] for t in vfi_expected["metric_fixture"]["triplets"]}
    got = {row["sample_id"].split("/")[0]: row["value"] for row in doc["per_sample"]}
    assert got == pytest.approx(want, abs=tol)


def test_npy_predictions_are_float_and_unrounded(run_cli, fixtures_dir, vfi_expected, tmp_path):
    triplet = vfi_expected["metric_fixture"]["triplets"][0]
    folder = fixtures_dir / "vfi" / triplet["name"]
    i0, i1 = (np.asarray(Image.open(folder / f"{n}.png")).astype(np.float32) / 255 for n in ("i0", "i1"))
    np.save(tmp_path / "gt.npy", ((i0 + i1) / 2).transpose(2, 0, 1)[None])
    code, out, _ = run_cli("measure", "psnr", "--variant", "amt", "--pred", tmp_path / "gt.npy",
                           "--gt", folder / "gt.png", "--json")
    assert code == 0
    assert json.loads(out)["aggregate"]["value"] == pytest.approx(
        triplet["pred_float_unrounded_vs_gt"]["psnr"], abs=vfi_expected["suggested_tolerances"]["psnr_db_abs"])


def test_ssim_without_variant_explains_the_choice(run_cli, fixtures_dir):
    tennis = fixtures_dir / "inpainting/tennis"
    code, out, err = run_cli("measure", "ssim", "--pred", tennis / "pred", "--gt", tennis / "gt", "--json")
    assert code != 0 and out == ""
    assert "win65" in err and "matlab3d" in err and "E2FGVI" in err and "AMT" in err and "--variant" in err


def _frames(tmp_path: Path, fixtures_dir: Path, n: int = 3) -> tuple[Path, Path]:
    tennis = fixtures_dir / "inpainting/tennis"
    for side in ("pred", "gt"):
        (tmp_path / side).mkdir()
        for i in range(n):
            shutil.copy(tennis / side / f"{i:05d}.png", tmp_path / side / f"{i:05d}.png")
    return tmp_path / "pred", tmp_path / "gt"


def test_missing_frame_is_named(run_cli, fixtures_dir, tmp_path):
    pred, gt = _frames(tmp_path, fixtures_dir)
    (pred / "00001.png").unlink()
    code, out, err = run_cli("measure", "psnr", "--variant", "e2fgvi", "--pred", pred, "--gt", gt, "--json")
    assert code == 2 and out == ""
    assert "00001.png" in err and "fix:" in err


def test_truncated_frame_is_named(run_cli, fixtures_dir, tmp_path):
    pred, gt = _frames(tmp_path, fixtures_dir)
    data = (pred / "00002.png").read_bytes()
    (pred / "00002.png").write_bytes(data[: len(data) // 2])
    code, out, err = run_cli("measure", "psnr", "--variant", "e2fgvi", "--pred", pred, "--gt", gt, "--json")
    assert code == 2 and out == ""
    assert str(pred / "00002.png") in err and "truncated" in err


def test_mis_sized_frame_is_named(run_cli, fixtures_dir, tmp_path):
    pred, gt = _frames(tmp_path, fixtures_dir)
    Image.open(pred / "00000.png").resize((430, 240)).save(pred / "00000.png")
    code, _, err = run_cli("measure", "ssim", "--variant", "win65", "--pred", pred, "--gt", gt, "--json")
    assert code == 2
    assert str(pred / "00000.png") in err and "430x240" in err and "432x240" in err


def test_grayscale_frame_is_refused_with_a_fix(run_cli, fixtures_dir, tmp_path):
    pred, gt = _frames(tmp_path, fixtures_dir)
    Image.open(pred / "00001.png").convert("L").save(pred / "00001.png")
    code, _, err = run_cli("measure", "psnr", "--variant", "e2fgvi", "--pred", pred, "--gt", gt)
    assert code == 2 and "00001.png" in err and "grayscale" in err


def test_unknown_metric_and_variant_suggest_close_names(run_cli, fixtures_dir):
    tennis = fixtures_dir / "inpainting/tennis"
    code, _, err = run_cli("measure", "ssmi", "--pred", tennis / "pred", "--gt", tennis / "gt")
    assert code == 2 and "'ssim'" in err
    code, _, err = run_cli("measure", "ssim", "--variant", "matlab", "--pred", tennis / "pred", "--gt", tennis / "gt")
    assert code == 2 and "'matlab3d'" in err


def test_options_a_metric_does_not_use_are_refused(run_cli, fixtures_dir):
    tennis = fixtures_dir / "inpainting/tennis"
    code, _, err = run_cli("measure", "psnr", "--variant", "e2fgvi", "--pred", tennis / "pred", "--gt", tennis / "gt",
                           "--mask", tennis / "masks")
    assert code == 2 and "--mask" in err


def test_stdout_is_exactly_one_json_document_in_a_real_process(fixtures_dir, tmp_path):
    """The installed console script: JSON on stdout only, logs on stderr."""
    tennis = fixtures_dir / "inpainting/tennis"
    exe = Path(sys.executable).parent / "triptych"
    proc = subprocess.run([str(exe), "measure", "psnr", "--variant", "e2fgvi", "--pred", str(tennis / "pred/00003.png"),
                           "--gt", str(tennis / "gt/00003.png"), "--json", "--out", str(tmp_path / "results")],
                          capture_output=True, text=True, check=True, env={**os.environ, "NO_COLOR": "1"})
    doc = json.loads(proc.stdout)
    assert doc["per_sample"][0]["sample_id"] == "00003"
    assert "run written to" in proc.stderr
