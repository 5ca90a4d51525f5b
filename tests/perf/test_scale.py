"""Performance suites (marked slow; CI runs them with small N, e.g. TRIPTYCH_PERF_FRAMES=120).

- Peak RSS of streaming scoring (PSNR + SSIM win65 through ``triptych score --pred-dir``) on one long
  432x240 video: the frames are the sample's tennis frames repeated. Printed; the target is < 2 GB at
  2,000 frames (VFID's whole-video protocol is exempt: it needs every frame of a clip at once).
- Throughput of Ray against the local executor, both with 2 workers on the same job: the sample portraits'
  2 identities copied ``TRIPTYCH_PERF_IDENTITIES`` times (10 by default: 80 leave-one-out samples, dlib
  face similarity). Target (issue #24): Ray within 15 % (ratio >= 0.85), recorded for the README's speed
  table and judged as ``test_speed_targets.py`` judges its targets (on a quiet machine, unless
  ``TRIPTYCH_SPEED_TARGETS=record``); each executor's best of ``TRIPTYCH_PERF_RUNS`` runs. The Ray
  instance is started before the clock, as a run on a cluster (``--ray-address``) finds it running; its
  start-up is printed beside (docs/scaling.md).
(The ssim:matlab3d speed target against AMT's conv3d is in test_speed_targets.py.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, long_tennis_video, run_peak_rss
from test_speed_targets import ROUNDS, OtherLoad, _verdict

pytestmark = pytest.mark.slow
FRAMES = int(os.environ.get("TRIPTYCH_PERF_FRAMES", "2000"))
TRIPTYCH = str(Path(sys.executable).parent / "triptych")
IDENTITY_COPIES = int(os.environ.get("TRIPTYCH_PERF_IDENTITIES", "10"))


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


def _portraits(root: Path, copies: int) -> Path:
    """A data root in the sample-portraits layout holding the sample's identities ``copies`` times each."""
    portraits = root / "samples/portraits"
    for source in sorted((REPO / "datasets/samples/portraits").iterdir()):
        for copy in range(copies):
            stem, _, class_word = source.name.rpartition("_")
            shutil.copytree(source, portraits / f"{stem}{copy:02d}_{class_word}", copy_function=os.link)
    subprocess.run([TRIPTYCH, "manifest", "build", str(portraits), "--name", "sample-portraits",
                    "--out", str(root / "manifests/sample-portraits.json")], check=True, capture_output=True)
    return root


def test_ray_within_15_percent_of_the_local_pool(tmp_path, benchmark):
    ray = pytest.importorskip("ray")
    from triptych.results import read_samples
    from triptych.scoring import score

    data = _portraits(tmp_path / "data", IDENTITY_COPIES)
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray_start = time.perf_counter() - start
    seconds, runs = {"local x2": float("inf"), "ray x2": float("inf")}, {}
    try:
        with OtherLoad() as load:
            for _ in range(ROUNDS):  # best of ROUNDS fresh runs each, taken in turn (neither gets a warmer cache)
                for name in seconds:
                    start = time.perf_counter()
                    runs[name] = score("sample-portraits", tmp_path / name.replace(" ", ""), method="reference_copy",
                                       data_root=data, executor=name.split()[0], workers=2, fresh=True)
                    seconds[name] = min(seconds[name], time.perf_counter() - start)
    finally:
        ray.shutdown()
    rows = [read_samples(run).sort_values(["sample_id", "metric"]).value.tolist() for run in runs.values()]
    assert rows[0] == rows[1]
    samples = len(read_samples(runs["local x2"]))
    rate = {name: samples / s for name, s in seconds.items()}
    ratio = rate["ray x2"] / rate["local x2"]
    benchmark.pedantic(lambda: None, rounds=1)  # the row's numbers are the extra_info below
    benchmark.extra_info.update({**{f"{k} samples/s": v for k, v in rate.items()}, "ray start s": ray_start})
    _verdict(benchmark, "Ray vs the local pool, 2 workers each, same job",
             f"{samples} portrait samples (dlib face similarity): Ray {rate['ray x2']:.2f} samples/s, local pool "
             f"{rate['local x2']:.2f} samples/s ({ratio:.2f}x); Ray instance start {ray_start:.1f} s, paid once "
             "per cluster", ratio, 0.85, ratio >= 0.85, "x", load)
