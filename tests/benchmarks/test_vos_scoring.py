"""Video completion scoring: chunked prediction for methods with a bounded temporal reach, and video-level
E_warp through the benchmark (composites read lazily, one pair at a time)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO
from triptych.baselines.inpainting import Propagation, make_mean_fill
from triptych.benchmarks import vos
from triptych.metrics.ewarp import ewarp_dis
from triptych.results import read_samples
from triptych.scoring import load_benchmark, score


@pytest.fixture(scope="module")
def tennis():
    data = load_benchmark("sample-tennis", data_root=REPO / "datasets")
    (video,) = data.samples
    return data.task, video


def test_chunked_prediction_equals_one_call_over_the_video(tennis, monkeypatch):
    task, video = tennis
    method = Propagation(max_distance=2)
    whole = task._predict_range(method, video, 0, len(video.frames), 0, len(video.frames))
    monkeypatch.setattr(vos, "PREDICT_CHUNK", 5)
    calls = []
    inpaint = method.inpaint
    monkeypatch.setattr(method, "inpaint", lambda x, m: calls.append(len(x)) or inpaint(x, m), raising=False)
    chunked = task.predict(method, video)
    np.testing.assert_array_equal(chunked, whole)
    # 24 frames in chunks of 5 targets with 2 frames of context each side: never the whole video at once
    assert calls == [7, 9, 9, 9, 6] and max(calls) < len(video.frames)


def test_lazy_frames_read_each_frame_once_in_a_pairwise_pass():
    reads = []
    frames = vos.LazyFrames(4, lambda t: reads.append(t) or np.full((2, 2, 3), t, np.uint8))
    pairs = [(int(frames[t][0, 0, 0]), int(frames[t + 1][0, 0, 0])) for t in range(len(frames) - 1)]
    assert pairs == [(0, 1), (1, 2), (2, 3)] and reads == [0, 1, 2, 3]
    assert [int(f[0, 0, 0]) for f in frames[1:3]] == [1, 2]
    with pytest.raises(IndexError):
        frames[4]


def test_ewarp_is_a_video_row_equal_to_the_metric_on_the_composites(tennis, tmp_path):
    task, video = tennis
    run = score("sample-tennis", tmp_path / "run", method="mean_fill",
                metrics=["psnr:e2fgvi", "ewarp:dis"], data_root=REPO / "datasets")
    rows = read_samples(run / "samples.parquet")
    ewarp = rows[rows.metric == "ewarp"]
    assert len(ewarp) == 1 and ewarp.iloc[0].level == "video" and ewarp.iloc[0].sample_id == "tennis"
    assert (rows[rows.metric == "psnr"].level == "frame").all() and (rows.metric == "psnr").sum() == 24
    prediction = task.predict(make_mean_fill(), video)
    composites = [task.composite(video, prediction, t)[0] for t in range(len(video.frames))]
    gts = [vos.process_frame(p, task.size) for p in video.frames]
    assert ewarp.iloc[0].value == ewarp_dis(composites, gts).value


@pytest.fixture(scope="module")
def running_car_root(fixtures_dir, tmp_path_factory):
    """The running-car benchmark laid out from ../shared as its spec's header says: frames dumped from the mp4,
    the static square mask beside them, and a manifest built by the CLI."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import cv2

    source = fixtures_dir.parent / "data/videos/running_car"
    root = tmp_path_factory.mktemp("running_car")
    (root / "running_car/frames").mkdir(parents=True)
    capture = cv2.VideoCapture(str(source / "running_car.mp4"))
    for i in range(48):
        ok, frame = capture.read()
        assert ok, f"frame {i} of running_car.mp4"
        cv2.imwrite(str(root / f"running_car/frames/{i:05d}.png"), frame)
    shutil.copy(source / "mask_square.png", root / "running_car/mask_square.png")
    subprocess.run([str(Path(sys.executable).parent / "triptych"), "manifest", "build", str(root / "running_car"),
                    "--name", "running-car", "--out", str(root / "manifests/running-car.json")], check=True,
                   capture_output=True)
    return root


def test_running_car_static_mask_and_baseline_order(running_car_root, tmp_path):
    data = load_benchmark("running-car", data_root=running_car_root)
    (video,) = data.samples
    assert len(video.frames) == 48 and set(video.masks) == {running_car_root / "running_car/mask_square.png"}
    psnr = {}
    for method in ("mean_fill", "telea"):
        run = score("running-car", tmp_path / method, method=method, data_root=running_car_root)
        rows = read_samples(run / "samples.parquet")
        assert len(rows) == 96
        psnr[method] = rows[rows.metric == "psnr"].value.mean()
    # the square hides static road texture that Telea's diffusion continues; a flat mean colour does not
    assert psnr["telea"] > psnr["mean_fill"] + 2


def test_scoring_running_car_raises_no_warning(running_car_root, tmp_path):
    """running-car's frames are resized to the variant's size (its mp4 is not 432x240): the resized frame
    reaches torch.from_numpy in the metrics, which warns on a read-only array (once per process, so the
    check runs in a fresh one, the real CLI, with every warning an error)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-W", "error", "-m", "triptych", "score", "--benchmark", "running-car",
                             "--method", "mean_fill", "--data-root", str(running_car_root), "--out", str(tmp_path),
                             "--metric", "ssim:win65", "--quiet"], capture_output=True, text=True)
    assert result.returncode == 0 and "Warning" not in result.stderr, result.stderr
    assert "ssim" in result.stdout


def test_run_summary_pools_frames_and_reports_each_video():
    """E2FGVI pools all frames; DEVIL averages per-video means: both in run.json, hand-computed here."""
    import pandas as pd

    from triptych.scoring import _summary, resolve_metrics

    (psnr,) = resolve_metrics(load_benchmark("sample-tennis", data_root=REPO / "datasets").spec, ["psnr:e2fgvi"])
    rows = pd.DataFrame({"metric": "psnr", "metric_variant": "e2fgvi",
                         "sample_id": ["a/00000", "a/00001", "a/00002", "b/00000"], "value": [30.0, 31.0, 32.0, 20.0]})
    summary = _summary(psnr, rows, {}, {}, per_video=True)
    assert summary["aggregate"]["value"] == pytest.approx(113 / 4)
    assert summary["per_video"] == {"a": {"value": pytest.approx(31.0), "n": 3}, "b": {"value": 20.0, "n": 1}}
    assert summary["mean_over_videos"] == pytest.approx(25.5)
    assert "per_video" not in _summary(psnr, rows, {}, {}, per_video=False)
