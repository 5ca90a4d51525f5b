"""PSNR / SSIM variants against the golden fixtures made with the authors' code (E2FGVI, AMT).

Expected values and tolerances are read from the fixtures' expected.json, never copied here.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import vfi_triplet_cases
from triptych.media import read_rgb
from triptych.metrics.aggregate import SampleMean
from triptych.metrics.psnr import psnr_amt, psnr_e2fgvi
from triptych.metrics.ssim import ssim_matlab3d, ssim_win65


def test_e2fgvi_psnr_and_ssim_win65_per_frame(fixtures_dir, inpainting_expected):
    tennis = fixtures_dir / "inpainting/tennis"
    tol = inpainting_expected["tolerances"]
    psnr_acc, ssim_acc = SampleMean(), SampleMean()
    for i, (want_psnr, want_ssim) in enumerate(zip(inpainting_expected["psnr"]["per_frame"],
                                                  inpainting_expected["ssim"]["per_frame"])):
        gt = read_rgb(tennis / f"gt/{i:05d}.png")
        pred = read_rgb(tennis / f"pred/{i:05d}.png")
        got_psnr, got_ssim = psnr_e2fgvi(pred, gt), ssim_win65(pred, gt)
        assert got_psnr == pytest.approx(want_psnr, abs=tol["psnr_db_abs"]), f"frame {i}"
        assert got_ssim == pytest.approx(want_ssim, abs=tol["ssim_abs"]), f"frame {i}"
        psnr_acc.update(got_psnr)
        ssim_acc.update(got_ssim)
    assert psnr_acc.count == inpainting_expected["n_frames"]
    assert psnr_acc.compute() == pytest.approx(inpainting_expected["psnr"]["video_mean"], abs=tol["psnr_db_abs"])
    assert ssim_acc.compute() == pytest.approx(inpainting_expected["ssim"]["video_mean"], abs=tol["ssim_abs"])


def test_win65_differs_from_the_7x7_default(fixtures_dir, inpainting_expected):
    """The diagnostic value for skimage's default window is not what ssim_win65 computes."""
    tennis = fixtures_dir / "inpainting/tennis"
    value = ssim_win65(read_rgb(tennis / "pred/00000.png"), read_rgb(tennis / "gt/00000.png"))
    assert abs(value - inpainting_expected["diagnostics_not_reference"]["ssim_video_if_win_size_7_default"]) > 0.05


@pytest.mark.parametrize("entry", ["pred_png_vs_gt", "pred_float_unrounded_vs_gt", "i0_vs_gt"])
def test_amt_psnr_and_ssim_matlab3d_per_triplet(fixtures_dir, vfi_expected, entry):
    tol = vfi_expected["suggested_tolerances"]
    for triplet, pred, gt in vfi_triplet_cases(fixtures_dir, vfi_expected, entry):
        want = triplet[entry]
        assert psnr_amt(pred, gt) == pytest.approx(want["psnr"], abs=tol["psnr_db_abs"]), triplet["name"]
        assert ssim_matlab3d(pred, gt) == pytest.approx(want["ssim"], abs=tol["ssim_abs"]), triplet["name"]


def test_psnr_of_identical_frames_is_inf():
    frame = np.full((8, 8, 3), 7, np.uint8)
    assert psnr_e2fgvi(frame, frame) == float("inf")
    assert psnr_amt(frame, frame) == float("inf")


def test_amt_variant_clamps_float_predictions():
    gt = np.zeros((16, 16, 3), np.uint8)
    over = np.full((16, 16, 3), -0.5, np.float32)  # clamps to 0 -> identical to gt
    assert psnr_amt(over, gt) == float("inf")
    assert psnr_e2fgvi(over, gt) < 20  # the E2FGVI variant does not clamp
