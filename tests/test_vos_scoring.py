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
