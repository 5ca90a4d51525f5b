"""Video completion performance (marked slow; CI runs them with small N, e.g. TRIPTYCH_PERF_FRAMES=200).

- DIS flow (both directions) per 432x240 pair, the part of E_warp that the warp + occlusion + error target
  of test_speed_targets.py leaves out (the ssim:win65 targets are there too).
- A long 432x240 video completed by the propagation baseline (temporal reach 30, fed in chunks) and scored
  with PSNR, SSIM and E_warp through ``triptych score``: peak RSS (target < 3 GB at 1,000 frames) and
  throughput in frames per second, printed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, long_tennis_video, run_peak_rss

pytestmark = pytest.mark.slow
FRAMES = int(os.environ.get("TRIPTYCH_PERF_FRAMES", "1000"))
TRIPTYCH = str(Path(sys.executable).parent / "triptych")


@pytest.fixture(scope="module")
def frame_pair():
    from triptych.media import read_rgb

    return (read_rgb(REPO / "datasets/samples/tennis/frames/00010.png"),
            read_rgb(REPO / "datasets/samples/tennis/frames/00011.png"))


def test_dis_flow_both_ways_speed(benchmark, frame_pair):
    from triptych.vision.flow import dis_flow

    a, b = frame_pair
    forward, backward = benchmark(lambda: (dis_flow(a, b), dis_flow(b, a)))
    assert forward.shape == backward.shape == (*a.shape[:2], 2)


def test_long_video_propagation_scored_with_psnr_ssim_ewarp(tmp_path, benchmark):
    data, _ = long_tennis_video(tmp_path, FRAMES)
    start = time.perf_counter()
    code, err, peak_mib = run_peak_rss([TRIPTYCH, "score", "--benchmark", "sample-tennis", "--method", "propagation",
                                        "--data-root", str(data), "--out", str(tmp_path / "results"),
                                        "--metric", "psnr:e2fgvi", "--metric", "ssim:win65", "--metric", "ewarp:dis"])
    assert code == 0, err
    seconds = time.perf_counter() - start
    print(f"\npropagation + psnr/ssim/ewarp on {FRAMES} frames of 432x240: peak RSS {peak_mib:.0f} MiB, "
          f"{seconds:.0f} s ({FRAMES / seconds:.2f} frames/s)")
    benchmark.extra_info.update({"frames": FRAMES, "peak_rss_mib": peak_mib, "frames_per_s": FRAMES / seconds})
    benchmark.pedantic(lambda: None, rounds=1)
    assert peak_mib < 3072
