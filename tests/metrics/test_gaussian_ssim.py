"""``ssim:pytorch_msssim`` and ``ms_ssim:pytorch_msssim`` (VFIBenchmark's SSIM and MS-SSIM) against the
``pytorch_msssim`` package fed as VFIBenchmark feeds it (PNG levels / 255, float predictions truncated by
``to_pil_image``), hand-computed known answers on flat frames, and ``triptych measure`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as TF

from triptych.errors import InputError
from triptych.metrics.gaussian_ssim import ms_ssim, ssim_pytorch_msssim

torch.set_num_threads(1)
pytorch_msssim = pytest.importorskip("pytorch_msssim")


def _pair(seed: int, size=(176, 200)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-70, 71, gt.shape), 0, 255).astype(np.uint8)
    return pred, gt


def _vfibench_tensor(image: np.ndarray) -> torch.Tensor:
    """VFIBenchmark's path: a float output saved with TF.to_pil_image, every PNG read back with ToTensor."""
    if image.dtype != np.uint8:
        image = np.asarray(TF.to_pil_image(torch.from_numpy(np.clip(image, 0, 1).transpose(2, 0, 1))))
    return TF.to_tensor(image)[None]


@pytest.mark.parametrize("seed", [0, 1])
def test_equal_to_pytorch_msssim_as_vfibenchmark_calls_it(seed):
    pred, gt = _pair(seed)
    x, y = _vfibench_tensor(pred), _vfibench_tensor(gt)
    want_ssim = pytorch_msssim.ssim(x, y, data_range=1.0, size_average=False).item()
    want_ms = pytorch_msssim.ms_ssim(x, y, data_range=1.0, size_average=False).item()
    assert 0.2 < want_ssim < 0.95 and 0.2 < want_ms < 0.99
    assert ssim_pytorch_msssim(pred, gt) == pytest.approx(want_ssim, abs=1e-6)
    assert ms_ssim(pred, gt) == pytest.approx(want_ms, abs=1e-6)
    # a float prediction is truncated to its PNG levels first, as VFIBenchmark saves it
    soft = pred.astype(np.float32) / 255 + np.float32(0.7 / 255)
    xs = _vfibench_tensor(soft)
    assert ssim_pytorch_msssim(soft, gt) == pytest.approx(
        pytorch_msssim.ssim(xs, y, data_range=1.0, size_average=False).item(), abs=1e-6)
    assert ms_ssim(soft, gt) == pytest.approx(
        pytorch_msssim.ms_ssim(xs, y, data_range=1.0, size_average=False).item(), abs=1e-6)


def test_known_answers_on_flat_frames():
    """Flat frames a and b: every variance is 0, so cs = 1 and SSIM = (2ab + C1) / (a^2 + b^2 + C1) with
    C1 = 1e-4, by hand; MS-SSIM = 1^(w1+..+w4) * SSIM^0.1333 on even sides (no zero padding reaches them)."""
    a, b = np.full((192, 192, 3), 51, np.uint8), np.full((192, 192, 3), 102, np.uint8)  # 0.2 and 0.4
    lum = (2 * 0.2 * 0.4 + 1e-4) / (0.2 ** 2 + 0.4 ** 2 + 1e-4)
    assert ssim_pytorch_msssim(b, a) == pytest.approx(lum, abs=1e-6)
    assert ms_ssim(b, a) == pytest.approx(lum ** 0.1333, abs=1e-6)
    assert ssim_pytorch_msssim(a, a) == pytest.approx(1.0, abs=1e-7)


def test_frames_too_small_are_refused_naming_the_size():
    pred, gt = _pair(2, size=(150, 200))
    with pytest.raises(InputError, match="200x150.*at least 161"):
        ms_ssim(pred, gt)
    with pytest.raises(InputError, match="at least 11"):
        ssim_pytorch_msssim(pred[:10], gt[:10])


def test_measure_end_to_end(tmp_path, run_cli):
    pred, gt = _pair(3)
    Image.fromarray(pred).save(tmp_path / "pred.png")
    Image.fromarray(gt).save(tmp_path / "gt.png")
    x, y = _vfibench_tensor(pred), _vfibench_tensor(gt)
    for metric, fn in (("ssim", pytorch_msssim.ssim), ("ms_ssim", pytorch_msssim.ms_ssim)):
        code, out, err = run_cli("measure", metric, "--variant", "pytorch_msssim", "--pred", tmp_path / "pred.png",
                                 "--gt", tmp_path / "gt.png", "--json")
        assert code == 0, err
        doc = json.loads(out)
        assert doc["metric_variant"] == "pytorch_msssim" and doc["metric_version"] == 1
        assert doc["aggregate"]["value"] == pytest.approx(fn(x, y, data_range=1.0).item(), abs=1e-6)
