"""The sliding-window runner of E2FGVI's test protocol (triptych.baselines.video_window), on hand-made cases.

The window model here is a small deterministic function of its input (no network): it records what it
was shown and returns known constants, so every composite and merge below is computed by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from triptych.baselines.video_window import Window, complete_video, composite, plan_windows, to_model_input
from triptych.errors import InputError, TriptychError


def test_windows_of_a_12_frame_video_by_hand():
    # f = 0, 5, 10; local = max(0, f-5) .. min(11, f+5); refs = {0, 10} minus the local frames
    assert plan_windows(12) == [
        Window(0, (0, 1, 2, 3, 4, 5), (10,)),
        Window(5, (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10), ()),
        Window(10, (5, 6, 7, 8, 9, 10, 11), (0,)),
    ]
    assert plan_windows(12)[0].frame_ids == (0, 1, 2, 3, 4, 5, 10)


def test_windows_of_a_24_frame_video_match_the_fixture_window():
    """model_ports/README: window f = 5 of a 24-frame video is frames 0..10 then reference 20."""
    window = plan_windows(24)[1]
    assert window.frame_ids == (*range(11), 20)
    assert [w.center for w in plan_windows(24)] == [0, 5, 10, 15, 20]
    assert plan_windows(24)[4] == Window(20, (15, 16, 17, 18, 19, 20, 21, 22, 23), (0, 10))


def test_short_videos_and_bad_strides():
    assert plan_windows(1) == [Window(0, (0,), ())]
    assert plan_windows(7) == [Window(0, (0, 1, 2, 3, 4, 5), ()), Window(5, (0, 1, 2, 3, 4, 5, 6), ())]
    with pytest.raises(InputError, match="at least one frame"):
        plan_windows(0)
    with pytest.raises(TriptychError, match="must be positive"):
        plan_windows(5, neighbor_stride=0)


def _video(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame i is the constant 10 * i + 7 (so the model can tell which frame it sees); pixel (0, 0) is the hole."""
    frames = np.stack([np.full((2, 3, 3), 10 * i + 7, np.uint8) for i in range(n)])
    holes = np.zeros((n, 2, 3), np.uint8)
    holes[:, 0, 0] = 1
    return frames, holes


def _scaled(value: float) -> float:
    """The model output x with ((x + 1) / 2) * 255 == value (float32)."""
    return float(np.float32(value) / np.float32(255) * 2 - 1)


def test_input_normalisation_merge_and_truncation_by_hand():
    frames, holes = _video(12)
    outputs = iter((100.9, 103.2, 120.999))  # windows 0, 1, 2 truncate to 100, 103, 120
    seen: list[tuple[int, ...]] = []
    calls = {"n": 0}

    def model(x: torch.Tensor, m: torch.Tensor, num_local: int) -> torch.Tensor:
        calls["n"] += 1
        assert x.dtype == torch.float32 and x.shape[:3] == (1, m.shape[1], 3) and m.shape[2] == 1
        ids = tuple(int(round((float(v) + 1) / 2 * 255 - 7)) // 10 for v in x[0, :, 0, 0, 1])
        seen.append(ids)
        # u / 255 * 2 - 1 exactly, and the hole mask in {0, 1}
        expected = torch.from_numpy(frames[list(ids)]).permute(0, 3, 1, 2).float().div(255) * 2 - 1
        assert torch.equal(x[0], expected) and torch.equal(m[0, :, 0], torch.from_numpy(holes[list(ids)]).float())
        return torch.full((x.shape[1], 3, 2, 3), _scaled(next(outputs)))

    got = {}
    calls_at_yield = {}
    for i, comp in complete_video(model, 12, lambda i: (frames[i], holes[i])):
        got[i] = comp
        calls_at_yield[i] = calls["n"]
    assert seen == [w.frame_ids for w in plan_windows(12)]
    assert list(got) == list(range(12))
    # frames 0-4: windows 0, 1; frame 5: windows 0, 1, 2; frames 6-10: windows 1, 2; frame 11: window 2
    hole_value = {**{i: 0.5 * 100 + 0.5 * 103 for i in range(5)}, 5: 0.5 * (0.5 * 100 + 0.5 * 103) + 0.5 * 120,
                  **{i: 0.5 * 103 + 0.5 * 120 for i in range(6, 11)}, 11: 120.0}
    for i, comp in got.items():
        assert comp.dtype == np.float32 and comp.shape == (2, 3, 3)
        assert np.all(comp[0, 0] == hole_value[i]), i
        visible = np.ones((2, 3), bool)
        visible[0, 0] = False
        assert np.all(comp[visible] == 10 * i + 7), i
    # streaming: frames 0-4 are final once window 1 has run (window 2 starts at frame 5)
    assert [calls_at_yield[i] for i in range(12)] == [2] * 5 + [3] * 7


def test_references_stay_cached_and_passed_frames_are_dropped():
    frames, holes = _video(24)
    reads: list[int] = []

    def read(i: int) -> tuple[np.ndarray, np.ndarray]:
        reads.append(i)
        return frames[i], holes[i]

    def model(x, m, num_local):
        return torch.zeros(x.shape[1], 3, 2, 3)

    assert [i for i, _ in complete_video(model, 24, read)] == list(range(24))
    # every frame read once: references (0, 10, 20) are kept across windows, neighbours until passed
    assert sorted(reads) == list(range(24))


def test_composite_truncates_clips_and_keeps_visible_pixels():
    pred = torch.tensor([_scaled(17.99), _scaled(-3.0), _scaled(300.0)]).view(1, 3, 1, 1)
    frame = np.array([[[5, 6, 7]]], np.uint8)
    assert composite(pred, frame, np.ones((1, 1, 1), np.uint8)).tolist() == [[[[17, 0, 255]]]]
    assert composite(pred, frame, np.zeros((1, 1, 1), np.uint8)).tolist() == [[[[5, 6, 7]]]]


def test_model_input_is_contiguous_float32():
    x, m = to_model_input(np.full((2, 4, 5, 3), 255, np.uint8), np.ones((2, 4, 5), np.uint8))
    assert x.shape == (1, 2, 3, 4, 5) and x.is_contiguous() and float(x.max()) == 1.0
    assert m.shape == (1, 2, 1, 4, 5) and m.dtype == torch.float32


def test_bad_model_outputs_and_frames_are_refused():
    frames, holes = _video(3)

    def read(i):
        return frames[i], holes[i]

    with pytest.raises(TriptychError, match="returned shape"):
        list(complete_video(lambda x, m, n: torch.zeros(1, 3, 2, 3), 3, read))
    with pytest.raises(TriptychError, match="NaN or Inf"):
        list(complete_video(lambda x, m, n: torch.full((3, 3, 2, 3), float("nan")), 3, read))
    with pytest.raises(InputError, match="0/1"):
        list(complete_video(lambda x, m, n: torch.zeros(3, 3, 2, 3), 3, lambda i: (frames[i], holes[i] * 255)))
    sizes = [frames[0], frames[1][:, :2], frames[2]]
    with pytest.raises(InputError, match="one size"):
        list(complete_video(lambda x, m, n: torch.zeros(3, 3, 2, 3), 3, lambda i: (sizes[i], holes[i][:, :sizes[i].shape[1]])))
