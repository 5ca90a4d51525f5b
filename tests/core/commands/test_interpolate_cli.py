"""``triptych interpolate``: baselines and AMT-S (fixture seed-0 weights) through the CLI, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from triptych.media import read_rgb


@pytest.fixture(scope="module")
def triplet(fixtures_dir: Path, vfi_expected: dict) -> Path:
    return fixtures_dir / "vfi" / vfi_expected["amt_s_port_fixture"]["triplet"]


def _unit(path: Path) -> np.ndarray:
    return read_rgb(path).astype(np.float32) / np.float32(255.0)


def test_linear_blend_writes_the_blend_and_its_rounded_png(run_cli, triplet, tmp_path):
    code, _, err = run_cli("interpolate", "--method", "linear_blend", triplet / "i0.png", triplet / "i1.png",
                           "--t", "0.25", "--out", tmp_path / "mid.png", "--raw-npy", tmp_path / "mid.npy")
    assert code == 0, err
    raw = np.load(tmp_path / "mid.npy")
    want = (0.75 * _unit(triplet / "i0.png") + 0.25 * _unit(triplet / "i1.png")).transpose(2, 0, 1)
    assert raw.dtype == np.float32 and raw.shape == want.shape
    np.testing.assert_allclose(raw, want, atol=1e-7)
    png = np.asarray(Image.open(tmp_path / "mid.png"))
    assert png.dtype == np.uint8
    assert np.array_equal(png, np.round(np.clip(raw, 0, 1) * np.float32(255)).astype(np.uint8).transpose(1, 2, 0))


def test_amt_s_with_seed0_weights_reproduces_the_fixture(run_cli, triplet, fixtures_dir, vfi_expected, tmp_path):
    """The raw .npy is the method's output; AMT clamps inside its forward (as the reference), so it is the
    clamp of the fixture's pre-clamp amt_s_out.npy; PSNR of the PNG is the fixture's up to rounding."""
    fixture = vfi_expected["amt_s_port_fixture"]
    case = fixture["cases"]["vimeo90k_ucf101_demo"]
    weights = fixtures_dir / "vfi" / fixture["weights_file"]
    code, _, err = run_cli("interpolate", "--method", "amt-s", "--weights", weights, triplet / "i0.png",
                           triplet / "i1.png", "--out", tmp_path / "amt.png", "--raw-npy", tmp_path / "amt.npy")
    assert code == 0, err
    want = np.clip(np.load(fixtures_dir / "vfi" / case["file_pre_clamp_npy"])[0], 0, 1)
    got = np.load(tmp_path / "amt.npy")
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= vfi_expected["suggested_tolerances"]["model_output_max_abs"]
    # the raw .npy scored with measure gives the fixture's metrics of the clamped output
    code, out, _ = run_cli("measure", "psnr", "--variant", "amt", "--pred", tmp_path / "amt.npy",
                           "--gt", triplet / "gt.png", "--json")
    assert code == 0
    assert json.loads(out)["aggregate"]["value"] == pytest.approx(
        case["metrics_clamped_output_vs_gt"]["psnr"], abs=vfi_expected["suggested_tolerances"]["psnr_db_abs"])


def test_dis_flow_beats_the_blend_through_the_cli(run_cli, triplet, tmp_path):
    psnr = {}
    for method in ("dis_flow", "linear_blend"):
        assert run_cli("interpolate", "--method", method, triplet / "i0.png", triplet / "i1.png",
                       "--out", tmp_path / f"{method}.png")[0] == 0
        code, out, _ = run_cli("measure", "psnr", "--variant", "uint8", "--pred", tmp_path / f"{method}.png",
                               "--gt", triplet / "gt.png", "--json")
        assert code == 0
        psnr[method] = json.loads(out)["aggregate"]["value"]
    assert psnr["dis_flow"] > psnr["linear_blend"] + 3.0, psnr


def test_errors_name_the_problem(run_cli, triplet, tmp_path):
    i0, i1 = triplet / "i0.png", triplet / "i1.png"
    code, _, err = run_cli("interpolate", "--method", "linear_blend", i0, i1, "--t", "1.5", "--out", tmp_path / "a.png")
    assert code == 2 and "--t 1.5" in err and "fix:" in err
    code, _, err = run_cli("interpolate", "--method", "linear_blend", i0, i1, "--out", tmp_path / "a.jpg")
    assert code == 2 and "PNG" in err
    code, _, err = run_cli("interpolate", "--method", "linear_blend", "--weights", i0, i0, i1, "--out",
                           tmp_path / "a.png")
    assert code == 2 and "takes no weights" in err
    Image.open(i1).resize((430, 240)).save(tmp_path / "small.png")
    code, _, err = run_cli("interpolate", "--method", "dis_flow", i0, tmp_path / "small.png", "--out",
                           tmp_path / "a.png")
    assert code == 2 and "small.png" in err and "430x240" in err and "432x240" in err
    code, _, err = run_cli("interpolate", "--method", "telea", i0, i1, "--out", tmp_path / "a.png")
    assert code == 2 and "video_inpainting method" in err
    assert not (tmp_path / "a.png").exists()
