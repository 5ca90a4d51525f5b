"""Fake frame-interpolation test sets, laid out exactly like the real ones (ptlflow's dummy datasets).

Each ``make_*`` writes small PNG frames where the real layout keeps them, with the quirks the readers
must handle (a Vimeo90K list with blank and one-character lines, SNU-FILM paths written for another
machine, UCF101 folder names whose string order differs from their numeric order, Adobe240 folders
created out of order). Frame ``j`` of a video is a uniform grey of value ``base + step * j``, so the
frame at time t between two frames is known exactly (what the x8 tests need). Returns the root to
hand to ``standardize_vfi --root``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from triptych.weights_rule import apply_weights_rule

GOPRO_TEST_VIDEOS = ("GOPR0384_11_00", "GOPR0385_11_01", "GOPR0410_11_00", "GOPR0862_11_00", "GOPR0869_11_00",
                     "GOPR0881_11_01", "GOPR0384_11_05", "GOPR0396_11_00", "GOPR0854_11_00", "GOPR0868_11_00",
                     "GOPR0871_11_00")  # gopro_datasets.py, as published
XIPH_CLIPS = ("BoxingPractice", "Crosswalk", "DrivingPOV", "FoodMarket", "FoodMarket2", "RitualDance",
              "SquareAndTimelapse", "Tango")  # xiph.py, as published


def grey(path: Path, value: int, size: tuple[int, int] = (8, 8)) -> Path:
    """Write a uniform RGB PNG of ``value`` (0..255) and ``size`` (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)
    return path


def make_vimeo90k(root: Path, names: list[str]) -> Path:
    """``tri_testlist.txt`` (with a blank, a lone-space, a lone-CR and a one-character line after the first
    entry; vimeo90k.py skips lines of length <= 1 after strip) and
    ``sequences/<a>/<b>/im1..im3.png``."""
    for n, name in enumerate(names):
        for i in (1, 2, 3):
            grey(root / "sequences" / name / f"im{i}.png", 10 * n + i)
    (root / "tri_testlist.txt").write_text(names[0] + "\n\n \n\r\n7\n" + "\n".join(names[1:]) + "\n")
    return root


def make_ucf101(root: Path, ids: list[str]) -> Path:
    """``ucf101_interp_ours/<id>/frame_00.png, frame_01_gt.png, frame_02.png``."""
    for n, name in enumerate(ids):
        for i, stem in enumerate(("frame_00", "frame_01_gt", "frame_02")):
            grey(root / name / f"{stem}.png", 10 * n + i)
    return root


def make_snu_film(root: Path, level: str, triplets: list[tuple[str, str, str]],
                  prefix: str = "data/SNU-FILM/test") -> Path:
    """``test-<level>.txt`` whose lines hold three paths under another machine's ``prefix``, and the
    frames at the last three components of each (e.g. ``GOPRO_test/GOPR0384_11_00/000001.png``)."""
    lines = []
    for n, triplet in enumerate(triplets):
        for i, rel in enumerate(triplet):
            grey(root / rel, (10 * n + i) % 256)
        lines.append(" ".join(f"{prefix}/{rel}" for rel in triplet))
    (root / f"test-{level}.txt").write_text("\n".join(lines) + "\n")
    return root


def make_xiph(root: Path, frames: int = 100, clips: tuple[str, ...] = XIPH_CLIPS) -> Path:
    """``<clip>/%03d.png`` from 001, for the eight clips (what xiph.py's ffmpeg call writes)."""
    for c, clip in enumerate(clips):
        for i in range(1, frames + 1):
            grey(root / clip / f"{i:03d}.png", (c + i) % 256)
    return root


def _video(folder: Path, frames: int, size: tuple[int, int], base: int, step: int) -> None:
    for j in range(frames):
        grey(folder / f"{j:06d}.png", base + step * j, size)


def make_gopro(root: Path, frames: int = 17, size: tuple[int, int] = (8, 8), step: int = 3) -> Path:
    """``test/<video>/%06d.png`` for the eleven GoPro test videos (and a train folder that must be ignored)."""
    for v, video in enumerate(GOPRO_TEST_VIDEOS):
        _video(root / "test" / video, frames, size, v, step)
    _video(root / "train" / "GOPR0372_07_00", 9, (8, 8), 0, step)
    return root


def make_adobe240(root: Path, videos: list[str], frames: int = 9, size: tuple[int, int] = (8, 8),
                  step: int = 3) -> Path:
    """``test_frames/<video>/%06d.png``, folders created in the order given (not sorted)."""
    for v, video in enumerate(videos):
        _video(root / video, frames, size, v, step)
    return root


def rule_amt_s_checkpoint(path: Path, seed: int) -> Path:
    """AMT-S with rule-built weights, saved as AMT releases its checkpoints (a dict with 'state_dict')."""
    from triptych.baselines.amt import build_amt

    model = build_amt("S")
    apply_weights_rule(model, seed=seed, gain=1.0)
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def adobe240_x8_test_frames(root: Path) -> Path:
    """test_frames/ with 10 video folders: [9::10] selects the tenth, 9 smooth 520x516 frames (one x8 set)."""
    for i in range(9):
        (root / f"clip_{i:02d}").mkdir(parents=True)
    video = root / "clip_09"
    video.mkdir()
    yy, xx = np.mgrid[0:516, 0:520]
    for t in range(9):
        frame = np.stack([(xx + 4 * t) % 256, (yy + 2 * t) % 256, (xx + yy) // 4 % 256], axis=-1).astype(np.uint8)
        Image.fromarray(frame).save(video / f"{t:05d}.png")
    return root
