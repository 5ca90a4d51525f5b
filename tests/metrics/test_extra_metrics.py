"""ie:amt against AMT's values in the VFI fixture; region (hole / valid) PSNR and SSIM for video completion."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import vfi_triplet_cases
from triptych.errors import InputError
from triptych.media import read_mask, read_rgb
from triptych.metrics.aggregate import SampleMean
from triptych.metrics.ie import ie_amt
from triptych.metrics.masked import psnr_region, ssim_region
from triptych.metrics.ssim import ssim_win65

# The fixture's IE values are float32 (values 8..15, where one float32 ulp is 9.5e-7 and the fixture's own
# rounding is up to half of that); our float64 mean of the same exact integer differences lies within
# 4.6e-7 of them, and rounds to the fixture's float32 exactly. 1e-6 = about one float32 ulp there.
IE_ABS = 1e-6


@pytest.mark.parametrize("entry", ["pred_png_vs_gt", "pred_float_unrounded_vs_gt", "i0_vs_gt"])
def test_ie_amt_matches_the_fixture(fixtures_dir, vfi_expected, entry):
    for triplet, pred, gt in vfi_triplet_cases(fixtures_dir, vfi_expected, entry):
        assert ie_amt(pred, gt) == pytest.approx(triplet[entry]["ie"], abs=IE_ABS), triplet["name"]


def test_ie_amt_known_answer_rounds_half_to_even_and_clamps():
    gt = np.zeros((1, 2, 3), np.uint8)
    pred = np.zeros((1, 2, 3), np.float32)
    pred[0, 0, 0] = np.float32(2.5) / np.float32(255)  # x*255 -> 2.5 in float32 -> rounds to 2 (half to even)
    pred[0, 1, 0] = 2.0  # clamped to 1 -> level 255
    assert np.float32(pred[0, 0, 0]) * np.float32(255) == np.float32(2.5)
    assert ie_amt(pred, gt) == pytest.approx((2 + 255) / 6, abs=1e-12)
    assert ie_amt(gt, gt) == 0.0


def _frame(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (96, 100, 3), dtype=np.uint8)


def test_psnr_region_equals_numpy_on_the_hole_pixels():
    gt, pred = _frame(0), _frame(1)
    mask = np.zeros(gt.shape[:2], np.uint8)
    mask[10:30, 40:75] = 200  # any value > 0 is hole
    hole = mask > 0
    for region, sel in (("hole", hole), ("valid", ~hole)):
        d = pred[sel].astype(np.float64) - gt[sel].astype(np.float64)
        assert d.shape == (sel.sum(), 3)
        want = 10 * math.log10(255.0**2 / np.mean(d * d))
        assert psnr_region(pred, gt, mask, region) == pytest.approx(want, abs=1e-12)
    # a prediction equal to gt outside the hole: valid PSNR is inf, hole PSNR ignores the valid pixels
    comp = np.where(hole[..., None], pred, gt)
    assert psnr_region(comp, gt, mask, "valid") == math.inf
    assert psnr_region(comp, gt, mask, "hole") == psnr_region(pred, gt, mask, "hole")


def test_ssim_region_is_the_win65_map_mean_over_the_region():
    gt, pred = _frame(2), _frame(3)
    full = np.ones(gt.shape[:2], bool)
    assert ssim_region(pred, gt, full) == pytest.approx(ssim_win65(pred, gt), abs=1e-12)
    mask = np.zeros(gt.shape[:2], bool)
    mask[40:50, 40:60] = True
    from skimage.metrics import structural_similarity
    _, smap = structural_similarity(gt.astype(np.float64), pred.astype(np.float64), data_range=255.0,
                                    channel_axis=-1, win_size=65, full=True)
    assert ssim_region(pred, gt, mask) == pytest.approx(smap[40:50, 40:60].mean(), abs=1e-12)
    inner = np.zeros_like(mask)
    inner[32:-32, 32:-32] = True
    assert ssim_region(pred, gt, mask, "valid") == pytest.approx(smap.mean(-1)[inner & ~mask].mean(), abs=1e-12)


def test_empty_region_and_size_mismatch_are_errors():
    gt, pred = _frame(4), _frame(5)
    empty = np.zeros(gt.shape[:2], np.uint8)
    with pytest.raises(InputError, match="hole region is empty"):
        psnr_region(pred, gt, empty)
    with pytest.raises(InputError, match="valid region is empty"):
        ssim_region(pred, gt, np.ones_like(empty), "valid")
    corner = empty.copy()
    corner[:5, :5] = 1  # only inside the 32-px border SSIM crops
    with pytest.raises(InputError, match="32-px border"):
        ssim_region(pred, gt, corner)
    with pytest.raises(InputError, match="mask is"):
        psnr_region(pred, gt, np.ones((10, 10), np.uint8))


def test_hole_psnr_reproduces_the_fixture_diagnostic(fixtures_dir, inpainting_expected):
    """``psnr_video_if_hole_pixels_only``: E2FGVI's PSNR formula restricted to the (dilated) hole pixels,
    one value per frame, pooled as the mean of the 24 per-frame values (PSNR of the pooled MSE differs)."""
    tennis = fixtures_dir / "inpainting/tennis"
    want = inpainting_expected["diagnostics_not_reference"]["psnr_video_if_hole_pixels_only"]
    acc, se, n = SampleMean(), 0.0, 0
    for i in range(inpainting_expected["n_frames"]):
        gt, pred = read_rgb(tennis / f"gt/{i:05d}.png"), read_rgb(tennis / f"pred/{i:05d}.png")
        hole = read_mask(tennis / f"masks/{i:05d}.png")
        acc.update(psnr_region(pred, gt, hole))
        d = pred[hole].astype(np.float64) - gt[hole]
        se, n = se + float(np.sum(d * d)), n + d.size
    tol = inpainting_expected["tolerances"]["psnr_db_abs"]
    assert acc.compute() == pytest.approx(want, abs=tol)
    assert abs(10 * math.log10(255.0**2 / (se / n)) - want) > 0.01  # not the pooled-MSE PSNR


def test_cli_measure_psnr_masked(run_cli, fixtures_dir, inpainting_expected, tmp_path):
    tennis = fixtures_dir / "inpainting/tennis"
    code, out, err = run_cli("measure", "psnr_masked", "--variant", "hole", "--pred", tennis / "pred",
                             "--gt", tennis / "gt", "--mask", tennis / "masks", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["metric"] == "psnr_masked" and doc["metric_variant"] == "hole"
    assert doc["inputs"]["mask"] == str(tennis / "masks")
    assert doc["aggregate"]["n"] == 24
    assert doc["aggregate"]["value"] == pytest.approx(
        inpainting_expected["diagnostics_not_reference"]["psnr_video_if_hole_pixels_only"], abs=1e-4)
    # the fixture's prediction is composited, so the valid region is identical: inf on every frame
    code, out, err = run_cli("measure", "psnr_masked", "--variant", "valid", "--pred", tennis / "pred/00003.png",
                             "--gt", tennis / "gt/00003.png", "--mask", tennis / "masks/00003.png", "--json")
    assert code == 0, err
    assert json.loads(out)["aggregate"]["value"] == "inf"
    code, out, err = run_cli("measure", "ssim_masked", "--variant", "hole", "--pred", tennis / "pred/00003.png",
                             "--gt", tennis / "gt/00003.png", "--mask", tennis / "masks/00003.png", "--json")
    assert code == 0, err
    assert 0 < json.loads(out)["aggregate"]["value"] < ssim_win65(read_rgb(tennis / "pred/00003.png"),
                                                                  read_rgb(tennis / "gt/00003.png"))


def test_cli_masked_errors(run_cli, fixtures_dir, tmp_path):
    tennis = fixtures_dir / "inpainting/tennis"
    base = ("measure", "psnr_masked", "--variant", "hole", "--pred", tennis / "pred", "--gt", tennis / "gt")
    code, _, err = run_cli(*base)
    assert code == 2 and "--mask" in err
    masks = tmp_path / "masks"
    shutil.copytree(tennis / "masks", masks)
    (masks / "00005.png").unlink()
    code, _, err = run_cli(*base, "--mask", masks)
    assert code == 2 and "00005" in err and "missing" in err
    shutil.copy(tennis / "masks/00006.png", masks / "00005.png")
    Image.new("L", (100, 50)).save(masks / "00007.png")
    code, _, err = run_cli(*base, "--mask", masks)
    assert code == 2 and "00007.png" in err and "100x50" in err
    Image.new("L", (432, 240)).save(masks / "00007.png")  # all zero: no hole
    code, _, err = run_cli(*base, "--mask", masks)
    assert code == 2 and "00007.png" in err and "empty" in err
    code, _, err = run_cli("measure", "ie", "--variant", "amt", "--pred", tennis / "pred", "--gt", tennis / "gt", "--mask", masks)
    assert code == 2 and "--mask" in err
