"""``triptych score`` on the embedded sample: benchmark variants, baselines, manifests, pred-dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from triptych.benchmarks.vos import process_mask
from triptych.results import read_run, read_samples
from triptych.scoring import load_benchmark, score

SAMPLE_TENNIS = REPO / "datasets/samples/tennis"


def test_sample_masks_processed_by_the_e2fgvi_variant_equal_the_fixture(fixtures_dir):
    for i in range(24):
        mask = process_mask(SAMPLE_TENNIS / f"masks/{i:05d}.png", (432, 240), 4)
        expected = np.asarray(Image.open(fixtures_dir / f"inpainting/tennis/masks/{i:05d}.png"))
        assert np.array_equal(mask * 255, expected), f"mask {i:05d}: {(mask * 255 != expected).sum()} pixels differ"


def test_linear_blend_on_triplet_10_11_12_gives_the_fixture_psnr(tmp_path, vfi_expected):
    run_dir = score("sample-triplets", tmp_path, method="linear_blend")
    rows = read_samples(run_dir)
    row = rows[(rows.sample_id == "tennis/00011") & (rows.metric == "psnr")]
    assert len(row) == 1 and row.metric_variant.item() == "amt"
    triplet = next(t for t in vfi_expected["metric_fixture"]["triplets"] if t["name"] == "triplet_010_011_012")
    tol = vfi_expected["suggested_tolerances"]
    assert row.value.item() == pytest.approx(triplet["pred_float_unrounded_vs_gt"]["psnr"], abs=tol["psnr_db_abs"])
    ssim = rows[(rows.sample_id == "tennis/00011") & (rows.metric == "ssim")].value.item()
    assert ssim == pytest.approx(triplet["pred_float_unrounded_vs_gt"]["ssim"], abs=tol["ssim_abs"])
    assert sorted(rows.sample_id.unique()) == [f"tennis/{c:05d}" for c in (1, 6, 11, 16, 21)]


def test_pred_dir_of_the_fixture_prediction_reproduces_its_per_frame_values(tmp_path, fixtures_dir,
                                                                            inpainting_expected):
    pred_dir = tmp_path / "pred"
    shutil.copytree(fixtures_dir / "inpainting/tennis/pred", pred_dir / "tennis")
    run_dir = score("sample-tennis", tmp_path / "results", pred_dir=pred_dir)
    rows = read_samples(run_dir)
    tol = inpainting_expected["tolerances"]
    for metric, key in (("psnr", "psnr_db_abs"), ("ssim", "ssim_abs")):
        got = rows[rows.metric == metric].sort_values("sample_id").value.tolist()
        assert got == pytest.approx(inpainting_expected[metric]["per_frame"], abs=tol[key])
    run = read_run(run_dir)
    assert run["data"]["manifest_sha256"] and run["benchmark_variant"] == "e2fgvi"
    assert {m["metric"]: m["variant"] for m in run["metrics"]} == {"psnr": "e2fgvi", "ssim": "win65"}


def test_mean_fill_scores_every_frame_below_the_ground_truth(tmp_path):
    rows = read_samples(score("sample-tennis", tmp_path, method="mean_fill"))
    assert len(rows) == 48 and set(rows.level) == {"frame"}
    assert rows[rows.metric == "psnr"].value.between(10, 60).all()


def _copy_datasets(tmp_path: Path) -> Path:
    root = tmp_path / "datasets"
    shutil.copytree(REPO / "datasets", root)
    return root


def test_a_corrupted_sample_file_is_caught_by_its_manifest_before_scoring(tmp_path):
    root = _copy_datasets(tmp_path)
    frame = root / "samples/tennis/frames/00007.png"
    data = bytearray(frame.read_bytes())
    data[-20] ^= 0xFF
    frame.write_bytes(bytes(data))
    with pytest.raises(Exception, match=r"1 changed since the manifest was made \(first: .*00007.png\)"):
        load_benchmark("sample-tennis", data_root=root)
    (root / "samples/tennis/masks/00003.png").unlink()
    with pytest.raises(Exception, match=r"1 missing \(first: .*masks/00003.png\)"):
        score("sample-tennis", tmp_path / "results", method="mean_fill", data_root=root)
    assert not (tmp_path / "results").exists(), "nothing is written before the data is checked"


def test_missing_prediction_is_named(tmp_path, run_cli):
    pred_dir = tmp_path / "pred/tennis"
    pred_dir.mkdir(parents=True)
    code, _, err = run_cli("score", "--benchmark", "sample-triplets", "--pred-dir", tmp_path / "pred",
                           "--out", tmp_path / "results")
    assert code == 2 and "tennis/00001.png" in err and "fix:" in err


def test_method_of_another_task_is_refused(tmp_path, run_cli):
    code, _, err = run_cli("score", "--benchmark", "sample-triplets", "--method", "mean_fill", "--out", tmp_path)
    assert code == 2 and "video_inpainting method" in err
