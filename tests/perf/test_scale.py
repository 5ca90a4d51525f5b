"""Performance suites (marked slow; CI runs them with small N, e.g. TRIPTYCH_PERF_FRAMES=120).

- Peak RSS of streaming scoring (PSNR + SSIM win65 through ``triptych score --pred-dir``) on one long
  432x240 video: the frames are the sample's tennis frames repeated. Printed; the target is < 2 GB at
  2,000 frames (VFID's whole-video protocol is exempt: it needs every frame of a clip at once).
- Throughput of the local executor against Ray on the sample portraits (8 samples).
- Speed of ssim:matlab3d (separable) against the reference formulation (one 11x11x11 conv3d, as AMT's
  calculate_ssim), measured in the same run and reported as a ratio.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import REPO, long_tennis_video, run_peak_rss

pytestmark = pytest.mark.slow
FRAMES = int(os.environ.get("TRIPTYCH_PERF_FRAMES", "2000"))
TRIPTYCH = str(Path(sys.executable).parent / "triptych")


def test_streaming_scoring_of_a_long_video_keeps_peak_memory_bounded(tmp_path):
    data, pred = long_tennis_video(tmp_path, FRAMES)
    start = time.perf_counter()
    code, err, peak_mib = run_peak_rss([TRIPTYCH, "score", "--benchmark", "sample-tennis", "--pred-dir", str(pred),
                                        "--data-root", str(data), "--out", str(tmp_path / "results")])
    assert code == 0, err
    seconds = time.perf_counter() - start
    print(f"\npeak RSS scoring {FRAMES} frames of 432x240 (psnr:e2fgvi + ssim:win65): {peak_mib:.0f} MiB, "
          f"{seconds:.1f} s ({seconds / FRAMES * 1000:.1f} ms/frame)")
    assert peak_mib < 2048


def test_local_and_ray_throughput(tmp_path, benchmark):
    pytest.importorskip("ray")
    from triptych.scoring import score

    timings = {}
    for name, kwargs in (("local x1", {}), ("ray x2", {"executor": "ray", "workers": 2})):
        start = time.perf_counter()
        score("sample-portraits", tmp_path / name.replace(" ", ""), method="reference_copy", **kwargs)
        timings[name] = time.perf_counter() - start
    print("\n" + ", ".join(f"{k}: {8 / v:.2f} samples/s ({v:.1f} s for 8)" for k, v in timings.items()))
    benchmark.extra_info.update({k: 8 / v for k, v in timings.items()})
    benchmark.pedantic(lambda: None, rounds=1)


def _ssim_reference_formulation(pred: np.ndarray, gt: np.ndarray) -> float:
    """AMT's formulation: one full 11x11x11 Gaussian conv3d per statistic (for timing only)."""
    x = torch.from_numpy(pred.astype(np.float32) / 255).permute(2, 0, 1)[None, None]
    y = torch.from_numpy(gt.astype(np.float32) / 255).permute(2, 0, 1)[None, None]
    g = torch.exp(-((torch.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    w = (g[:, None, None] * g[None, :, None] * g[None, None, :])[None, None]
    blur = lambda v: F.conv3d(F.pad(v, (5,) * 6, mode="replicate"), w)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return float((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())


@pytest.mark.parametrize("implementation", ["triptych", "reference_formulation"])
def test_ssim_matlab3d_speed(benchmark, implementation):
    from triptych.media import read_rgb
    from triptych.metrics.ssim import ssim_matlab3d

    gt = read_rgb(REPO / "datasets/samples/tennis/frames/00011.png")
    pred = read_rgb(REPO / "datasets/samples/tennis/frames/00010.png")
    fn = ssim_matlab3d if implementation == "triptych" else _ssim_reference_formulation
    value = benchmark(fn, pred, gt)
    assert value == pytest.approx(ssim_matlab3d(pred, gt), abs=1e-5)
