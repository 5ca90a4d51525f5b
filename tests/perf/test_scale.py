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


ROUND_TRIPS = 50  # one-call chunks sent to one actor in turn: the per-chunk overhead


def test_scaling_model_costs(benchmark):
    """The per-frame and per-run costs that docs/scaling.md's model of a YouTube-VOS run uses, on one core:
    decoding a 432x240 frame, I3D's forward per frame of a whole-video clip (VFID; random weights, the
    same compute), and Ray's instance start, actor start and per-chunk overhead (2 workers)."""
    ray = pytest.importorskip("ray")
    import numpy as np

    from test_speed_targets import SAMPLE, _best_seconds
    from triptych.executors import _ChunkWorker, ray_map
    from triptych.media import read_rgb
    from triptych.metrics.i3d import InceptionI3d, i3d_features
    from triptych.threads import configure_scoring_process

    configure_scoring_process(1)
    frames = sorted(SAMPLE.glob("*.png"))
    decode_s, clip = _best_seconds(lambda: np.stack([read_rgb(f) for f in frames]), 3)
    i3d_s, _ = _best_seconds(lambda: i3d_features(clip, InceptionI3d().eval()), 2)
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    costs = {"decode ms/frame": decode_s / len(frames) * 1000, "i3d ms/frame": i3d_s / len(frames) * 1000,
             "ray instance start s": time.perf_counter() - start}
    try:
        start = time.perf_counter()
        list(ray_map(abs, [(0,), (1,)], 2, None))  # a builtin: importable by every worker
        costs["ray actors start s"] = time.perf_counter() - start
        worker = ray.remote(num_cpus=1)(_ChunkWorker).remote()
        ray.get(worker.run.remote(abs, [(0, (1,))]))
        chunk_s, _ = _best_seconds(lambda: [ray.get(worker.run.remote(abs, [(0, (i,))])) for i in range(ROUND_TRIPS)],
                                   1)
        costs["ray ms per chunk"] = chunk_s / ROUND_TRIPS * 1000
    finally:
        ray.shutdown()
    benchmark.pedantic(lambda: None, rounds=1)  # the numbers are the extra_info below
    benchmark.extra_info.update(costs)
    print("\n" + ", ".join(f"{k}: {v:.3g}" for k, v in costs.items()))
