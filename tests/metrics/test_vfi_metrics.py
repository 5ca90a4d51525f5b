"""The EMA-VFI / VFIMamba Xiph metric variants ``psnr:uint8`` and ``ssim:skimage7``: against scikit-image
(the reference's own library), hand-computed values, the VFI fixture, and through ``triptych measure``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from conftest import vfi_triplet_cases
from triptych.metrics.psnr import psnr_amt, psnr_uint8, quantize_uint8
from triptych.metrics.ssim import ssim_skimage7, ssim_win65


def _xiph_reference_prediction(pred: np.ndarray) -> np.ndarray:
    """EMA-VFI benchmark/Xiph.py: ``(x.clamp(0, 1).numpy() * 255.0).round().astype(np.uint8)``."""
    return (np.clip(pred.astype(np.float32), 0.0, 1.0) * 255.0).round().astype(np.uint8)


def test_quantize_rounds_half_to_even_and_clamps():
    values = np.array([0.5, 1.5, 2.5, 254.5, 300.0, -3.0], np.float64) / 255.0
    assert quantize_uint8(values.astype(np.float32)).tolist() == [0, 2, 2, 254, 255, 0]
    image = np.arange(256, dtype=np.uint8)
    assert quantize_uint8(image) is image


def test_psnr_uint8_equals_skimage_on_rounded_float_predictions():
    rng = np.random.default_rng(0)
    for _ in range(5):
        gt = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
        pred = np.clip(gt / 255.0 + rng.normal(0, 0.004, gt.shape), -0.1, 1.1).astype(np.float32)
        want = peak_signal_noise_ratio(gt, _xiph_reference_prediction(pred), data_range=255)
        assert psnr_uint8(pred, gt) == pytest.approx(want, rel=1e-12)
        assert abs(psnr_uint8(pred, gt) - psnr_amt(pred, gt)) > 0.1  # rounding moves the number


def test_psnr_uint8_of_equal_images_is_inf():
    gt = np.full((8, 8, 3), 7, np.uint8)
    assert psnr_uint8(gt / np.float32(255.0), gt) == np.inf


def test_psnr_uint8_on_stored_pngs_matches_the_amt_fixture(fixtures_dir, vfi_expected):
    """On a uint8 prediction nothing is rounded, so the value is AMT's PSNR up to float32 (README)."""
    tol = vfi_expected["suggested_tolerances"]["psnr_db_abs"]
    for triplet, pred, gt in vfi_triplet_cases(fixtures_dir, vfi_expected, "pred_png_vs_gt"):
        assert psnr_uint8(pred, gt) == pytest.approx(triplet["pred_png_vs_gt"]["psnr"], abs=tol)


def test_uint8_variant_rounds_the_unrounded_fixture_prediction(fixtures_dir, vfi_expected):
    tol = vfi_expected["suggested_tolerances"]["psnr_db_abs"]
    for triplet, pred, gt in vfi_triplet_cases(fixtures_dir, vfi_expected, "pred_float_unrounded_vs_gt"):
        value = psnr_uint8(pred, gt)
        assert value == psnr_uint8(_xiph_reference_prediction(pred), gt)
        assert abs(value - triplet["pred_float_unrounded_vs_gt"]["psnr"]) > tol


def test_skimage7_of_constant_images_is_the_luminance_term():
    """Flat images: every variance is 0, so SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1), C1 = (0.01 * 255)^2."""
    gt = np.full((16, 16, 3), 100, np.uint8)
    pred = np.full((16, 16, 3), 110 / 255, np.float32)
    c1 = (0.01 * 255) ** 2
    assert ssim_skimage7(pred, gt) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), rel=1e-12)


def test_skimage7_equals_skimage_defaults_per_channel_and_differs_from_win65(fixtures_dir, vfi_expected):
    for _, pred, gt in vfi_triplet_cases(fixtures_dir, vfi_expected, "pred_float_unrounded_vs_gt"):
        rounded = _xiph_reference_prediction(pred)
        want = np.mean([structural_similarity(gt[..., c], rounded[..., c], data_range=255) for c in range(3)])
        assert ssim_skimage7(pred, gt) == pytest.approx(want, abs=1e-12)
        assert abs(ssim_skimage7(pred, gt) - ssim_win65(pred, gt)) > 0.01


def _triplet_layout(fixtures_dir: Path, vfi_expected: dict, tmp_path: Path) -> tuple[Path, Path]:
    for triplet in vfi_expected["metric_fixture"]["triplets"]:
        for side, name in (("pred", "pred.png"), ("gt", "gt.png")):
            (tmp_path / side / triplet["name"]).mkdir(parents=True)
            shutil.copy(fixtures_dir / "vfi" / triplet["name"] / name, tmp_path / side / triplet["name"] / "im.png")
    return tmp_path / "pred", tmp_path / "gt"


def test_measure_psnr_uint8_reproduces_the_fixture(run_cli, fixtures_dir, vfi_expected, tmp_path):
    pred, gt = _triplet_layout(fixtures_dir, vfi_expected, tmp_path)
    code, out, _ = run_cli("measure", "psnr", "--variant", "uint8", "--pred", pred, "--gt", gt, "--json")
    assert code == 0
    doc = json.loads(out)
    assert (doc["metric"], doc["metric_variant"], doc["metric_version"]) == ("psnr", "uint8", 1)
    want = {t["name"]: t["pred_png_vs_gt"]["psnr"] for t in vfi_expected["metric_fixture"]["triplets"]}
    got = {row["sample_id"].split("/")[0]: row["value"] for row in doc["per_sample"]}
    assert got == pytest.approx(want, abs=vfi_expected["suggested_tolerances"]["psnr_db_abs"])


def test_measure_skimage7_on_npy_equals_measure_on_the_rounded_png(run_cli, fixtures_dir, vfi_expected, tmp_path):
    """A float .npy prediction is rounded exactly as the PNG a Xiph script would have written."""
    triplet, pred, gt = next(vfi_triplet_cases(fixtures_dir, vfi_expected, "pred_float_unrounded_vs_gt"))
    gt_path = fixtures_dir / "vfi" / triplet["name"] / "gt.png"
    np.save(tmp_path / "pred.npy", pred.transpose(2, 0, 1))
    Image.fromarray(_xiph_reference_prediction(pred)).save(tmp_path / "pred.png")
    values = {}
    for metric, variant in (("ssim", "skimage7"), ("psnr", "uint8")):
        for suffix in (".npy", ".png"):
            code, out, _ = run_cli("measure", metric, "--variant", variant, "--pred", tmp_path / f"pred{suffix}",
                                   "--gt", gt_path, "--json")
            assert code == 0
            values[metric, suffix] = json.loads(out)["aggregate"]["value"]
        assert values[metric, ".npy"] == values[metric, ".png"]
    want = np.mean([structural_similarity(gt[..., c], _xiph_reference_prediction(pred)[..., c], data_range=255)
                    for c in range(3)])
    assert values["ssim", ".npy"] == pytest.approx(want, abs=1e-12)


def test_variantless_ssim_lists_skimage7(run_cli, fixtures_dir):
    tennis = fixtures_dir / "inpainting/tennis"
    code, out, err = run_cli("measure", "ssim", "--pred", tennis / "pred", "--gt", tennis / "gt", "--json")
    assert code != 0 and out == ""
    assert "skimage7" in err and "EMA-VFI" in err
