"""Variants of the field's evaluation toolkits: VFIBenchmark's IE beside AMT's, and DEVIL's whole-frame
PSNR (= ``psnr:e2fgvi`` on the composite) and SSIM (``ssim:devil``)."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.util.dtype import dtype_range

from conftest import REPO, VFI_ENTRIES, vfi_triplet_cases
from triptych.media import read_mask, read_rgb
from triptych.metrics.ie import ie_amt, ie_vfibench, pil_levels
from triptych.metrics.psnr import psnr_e2fgvi
from triptych.metrics.ssim import ssim_devil, ssim_skimage7
from triptych.registry import registry

# The fixture's IE values are float32 in 8..15 (one ulp is 9.5e-7 there); exact integer means in float64
# lie within 4.6e-7 of them (tests/metrics/test_extra_metrics.py), and within 4.6e-7 of VFIBenchmark's float32
# formula run here. 1e-6 = about one float32 ulp.
IE_ABS = 1e-6
TENNIS = REPO / "datasets/samples/tennis"


def _vfibench_reference(pred: np.ndarray, gt: np.ndarray) -> float:
    """VFIBenchmark @ 40a05ec ``ie`` as it computes it, in torch float32: the PNG levels read back with
    ``ToTensor`` (uint8 / 255), ``(pred - gt).div(1.0) * 255.0``, ``abs().mean(dim=(-3, -2, -1))``."""
    p, g = (torch.from_numpy(pil_levels(x)).permute(2, 0, 1)[None].float() / 255 for x in (pred, gt))
    return float((p - g).div(1.0).mul(255.0).abs().mean(dim=(-3, -2, -1)).item())


def test_ie_vfibench_known_answer_truncates_where_amt_rounds():
    gt = np.zeros((1, 2, 3), np.uint8)
    pred = np.zeros((1, 2, 3), np.float32)
    pred[0, 0, 0] = np.float32(12.9 / 255)  # level 12.9: truncated to 12 (amt: 13)
    pred[0, 0, 1] = np.float32(3.5) / np.float32(255)  # level 3.5 exactly: truncated to 3 (amt, half to even: 4)
    pred[0, 1, 0] = 1.2  # clamped to level 255 by both
    pred[0, 1, 1] = -0.1  # clamped to level 0 by both
    assert pred[0, 0, 1] * np.float32(255) == np.float32(3.5)
    assert ie_vfibench(pred, gt) == pytest.approx((12 + 3 + 255) / 6, abs=1e-12)
    assert ie_amt(pred, gt) == pytest.approx((13 + 4 + 255) / 6, abs=1e-12)


def test_ie_vfibench_known_answer_on_uint8_equals_amt():
    pred = np.array([[[10, 0, 5]]], np.uint8)
    gt = np.array([[[0, 20, 5]]], np.uint8)
    assert ie_vfibench(pred, gt) == ie_amt(pred, gt) == pytest.approx((10 + 20 + 0) / 3, abs=1e-12)
    assert ie_vfibench(gt, gt) == 0.0


@pytest.mark.parametrize("entry", VFI_ENTRIES)
def test_ie_vfibench_matches_its_float32_formula_on_the_fixture(fixtures_dir, vfi_expected, entry):
    for triplet, pred, gt in vfi_triplet_cases(fixtures_dir, vfi_expected, entry):
        assert ie_vfibench(pred, gt) == pytest.approx(_vfibench_reference(pred, gt), abs=IE_ABS), triplet["name"]


@pytest.mark.parametrize("entry", ["pred_png_vs_gt", "i0_vs_gt"])
def test_ie_vfibench_equals_amts_fixture_values_on_uint8_predictions(fixtures_dir, vfi_expected, entry):
    for triplet, pred, gt in vfi_triplet_cases(fixtures_dir, vfi_expected, entry):
        assert ie_vfibench(pred, gt) == pytest.approx(triplet[entry]["ie"], abs=IE_ABS), triplet["name"]


def test_ie_vfibench_differs_from_amt_on_float_predictions(fixtures_dir, vfi_expected):
    """The unrounded blend (levels k + 0.5 wherever i0 + i1 is odd): AMT rounds half to even, VFIBenchmark
    truncates, so the two IEs part by far more than the float tolerance, and only by the quantisation."""
    entry = "pred_float_unrounded_vs_gt"
    for triplet, pred, gt in vfi_triplet_cases(fixtures_dir, vfi_expected, entry):
        amt, vfibench = triplet[entry]["ie"], ie_vfibench(pred, gt)
        assert abs(vfibench - amt) > 1000 * IE_ABS, triplet["name"]
        assert vfibench == ie_amt(pil_levels(pred), gt), triplet["name"]


def _tennis_composites() -> list[tuple[np.ndarray, np.ndarray]]:
    """(composite, ground truth) for three sample frames: frame t+1 as the prediction inside frame t's hole,
    ground truth elsewhere, as DEVIL's ``get_comp_frame`` builds it."""
    cases = []
    for t in (0, 5, 11):
        gt = read_rgb(TENNIS / f"frames/{t:05d}.png")
        pred = read_rgb(TENNIS / f"frames/{t + 1:05d}.png")
        hole = read_mask(TENNIS / f"masks/{t:05d}.png") > 0
        cases.append((np.where(hole[..., None], pred, gt), gt))
    return cases


def _devil_float32(image: np.ndarray) -> np.ndarray:
    """DEVIL ``pil_rgb_to_numpy``: ``np.array(pil, dtype=np.float32) / 255``."""
    return np.array(image, dtype=np.float32) / 255


def test_psnr_e2fgvi_is_devils_whole_frame_psnr_on_the_composite():
    """DEVIL ``psnr_computer.py``: ``peak_signal_noise_ratio(gt, comp, data_range=1)`` on float32 [0, 1]
    (scikit-image squares float32 differences and averages in float64, then as in 0.17.2). Measured
    1.3e-7 dB apart here; 1e-5 dB leaves room for float32 rounding, far below the 0.01 dB gate."""
    for comp, gt in _tennis_composites():
        devil = peak_signal_noise_ratio(_devil_float32(gt), _devil_float32(comp), data_range=1)
        assert psnr_e2fgvi(comp, gt) == pytest.approx(devil, abs=1e-5)
    assert "devil" not in registry().metric("psnr").variants  # no duplicate variant
    assert "DEVIL" in registry().metric("psnr").variant("e2fgvi").protocol


def _skimage_0172_float_data_range() -> float:
    """What scikit-image 0.17.2 used for float32 input without ``data_range``: the dtype's range."""
    dmin, dmax = dtype_range[np.float32]
    return float(dmax - dmin)


def test_ssim_devil_matches_skimage_called_as_devil_calls_it():
    """``structural_similarity(gt, comp, multichannel=True)`` of scikit-image 0.17.2 on DEVIL's float32
    frames: range from the dtype, cast to float64 inside. Recent releases want ``data_range`` and
    ``channel_axis`` spelled out and compute in float32 for float32 input, hence both comparisons."""
    data_range = _skimage_0172_float_data_range()
    for comp, gt in _tennis_composites():
        g, c = _devil_float32(gt), _devil_float32(comp)
        as_0172 = structural_similarity(g.astype(np.float64), c.astype(np.float64), channel_axis=-1,
                                        data_range=data_range)
        assert ssim_devil(comp, gt) == pytest.approx(as_0172, abs=1e-12)
        assert ssim_devil(comp, gt) == pytest.approx(structural_similarity(g, c, channel_axis=-1, data_range=data_range),
                                                     abs=1e-6)
        assert ssim_devil(comp, gt) - ssim_skimage7(comp, gt) > 1e-3  # data range 2, not 1: not skimage7


def test_ssim_devil_known_answer_constant_frames():
    """One 7x7 window of constant frames: no variance, so SSIM = C1 / (mu_pred^2 + C1). With 0 against
    51/255 = 0.2 and C1 = (0.01 * 2)^2: 0.0004 / 0.0404 = 1/101; skimage7 (C1 = 0.01^2) gives 1/401."""
    gt = np.zeros((7, 7, 3), np.uint8)
    pred = np.full((7, 7, 3), 51, np.uint8)
    assert ssim_devil(pred, gt) == pytest.approx(1 / 101, abs=1e-8)
    assert ssim_skimage7(pred, gt) == pytest.approx(1 / 401, abs=1e-8)


def test_ssim_devil_known_answer_checkerboard():
    """Black ground truth against a 7x7 checkerboard of 25 white and 24 black pixels (one window):
    mu = 25/49, sample variance = 49/48 * (25/49 - (25/49)^2) = 25/98, covariance 0, so
    SSIM = C1 / (mu^2 + C1) * C2 / (var + C2) with C1 = 0.02^2, C2 = 0.06^2."""
    board = ((np.arange(7)[:, None] + np.arange(7)[None, :]) % 2 == 0).astype(np.uint8) * 255
    pred = np.repeat(board[..., None], 3, axis=2)
    gt = np.zeros_like(pred)
    mu, var = Fraction(25, 49), Fraction(25, 98)
    c1, c2 = Fraction(2, 100) ** 2, Fraction(6, 100) ** 2
    assert int(board.sum()) // 255 == 25
    assert ssim_devil(pred, gt) == pytest.approx(float(c1 / (mu * mu + c1) * c2 / (var + c2)), abs=1e-12)


def test_new_variants_are_reachable_through_measure(tmp_path, run_cli):
    """``triptych measure ie --variant vfibench`` and ``ssim --variant devil`` on a frame pair."""
    comp, gt = _tennis_composites()[0]
    for side, image in (("pred", comp), ("gt", gt)):
        (tmp_path / side).mkdir()
        Image.fromarray(image).save(tmp_path / side / "00000.png")
    for metric, variant, fn in (("ie", "vfibench", ie_vfibench), ("ssim", "devil", ssim_devil)):
        code, out, err = run_cli("measure", metric, "--variant", variant, "--pred", tmp_path / "pred",
                                 "--gt", tmp_path / "gt", "--json")
        assert code == 0, err
        doc = json.loads(out)
        assert doc["metric_variant"] == variant
        assert doc["per_sample"][0]["value"] == pytest.approx(fn(comp, gt), abs=1e-12)
