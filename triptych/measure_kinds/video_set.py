"""Set metrics over videos (VFID): one value for the whole set of (ground truth, prediction) videos.

Inputs (docs/conventions.md, "``triptych measure ... --json``", Videos):

- a folder of images is one video; a folder whose entries are all folders is one video per entry, and
  ``--pred`` / ``--gt`` videos pair by name (a video missing on either side is an error that names it);
- frames pair by relative path without suffix, in sorted file-name order (E2FGVI reads sorted frames);
- ``--clip-len N --clip-stride S`` cut each video into clips of N frames starting every S frames (only
  clips that fit; S defaults to N, and is recorded); each clip is then one "video" of the set, as in the
  VFID fixtures (6/6 and 16/2). Without them each whole video is one clip, as E2FGVI does.

``per_sample`` stays empty: a set metric has no per-video value (the per-clip I3D feature norms are in
``extras.feature_norms``). The aggregate is the set's value with the reduction "frechet distance over N
videos"; ``extras`` holds the covariance ranks, the exact low-rank value and the Fréchet components.
``check`` raises every input error before any weights are looked up. The ``weights`` record is the file
that was loaded: the registry's ``i3d_rgb_imagenet``, or the ``--weights`` file (``describe_user_file``),
with the hash of the loaded state.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from triptych.errors import InputError, TriptychError
from triptych.folders import visible_entries
from triptych.inputs import bind
from triptych.media import IMAGE_SUFFIXES, Pair, image_size, pair_paths, read_prediction
from triptych.metrics.convert import to_unit_float32

OPTIONS: frozenset[str] = frozenset({"--weights", "--clip-len", "--clip-stride"})
VIDEO_FILE_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")


@dataclass
class SetValue:
    """The aggregate of a set metric: one value computed over ``count`` samples at once (not a mean)."""

    value: float
    count: int
    reduction: str

    def compute(self) -> float:
        if math.isnan(self.value):
            raise TriptychError("a set metric produced NaN; it is never recorded", fix="check the inputs")
        return self.value


# --- pure helpers ------------------------------------------------------------------------------------------------

def clip_starts(n_frames: int, clip_len: int, stride: int) -> list[int]:
    """Start frames of the clips that fit: 0, S, 2S, ... while start + N <= n_frames.

    >>> clip_starts(24, 6, 6), clip_starts(22, 16, 2), clip_starts(5, 6, 6)
    ([0, 6, 12, 18], [0, 2, 4, 6], [])
    """
    return list(range(0, n_frames - clip_len + 1, stride)) if n_frames >= clip_len else []


def clip_options(clip_len: int | None, clip_stride: int | None) -> tuple[int | None, int | None]:
    """Validate ``--clip-len`` / ``--clip-stride``; the stride defaults to the length (non-overlapping)."""
    if clip_len is None:
        if clip_stride is not None:
            raise InputError("--clip-stride needs --clip-len", fix="pass --clip-len N as well, e.g. --clip-len 16 "
                                                                   "--clip-stride 2")
        return None, None
    stride = clip_len if clip_stride is None else clip_stride
    if clip_len < 1 or stride < 1:
        raise InputError(f"--clip-len {clip_len} and --clip-stride {stride} must be positive",
                         fix="e.g. --clip-len 6 --clip-stride 6 (the VFID fixture's primary set)")
    return clip_len, stride


def list_videos(root: Path, flag: str) -> tuple[dict[str, Path], bool]:
    """(name -> frame folder, whether the folder is a set of videos) of a ``--pred`` / ``--gt`` folder."""
    if not root.is_dir():
        what = "a file" if root.exists() else "not found"
        raise InputError(f"{flag} {root}: {what}; a video is a folder of frames",
                         fix="pass a folder of frames (one video) or a folder of video folders")
    entries = visible_entries(root)
    files = [p for p in entries if p.suffix.lower() in VIDEO_FILE_SUFFIXES and p.is_file()]
    if files:
        raise InputError(f"{flag} {root}: video files such as {files[0].name} are not read by 'measure'",
                         fix="extract the frames (e.g. ffmpeg -i video.mp4 frames/%05d.png), one folder per video")
    if entries and all(p.is_dir() for p in entries):
        return {p.name: p for p in entries}, True
    folders = [p for p in entries if p.is_dir()]
    if folders:
        raise InputError(f"{flag} {root}: mixes frames and folders (e.g. {folders[0].name}/)",
                         fix="use either a folder of frames (one video) or a folder holding only video folders")
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in entries):
        raise InputError(f"{flag} {root}: no PNG or JPEG frames found", fix="check the path")
    return {root.name: root}, False


def pair_videos(pred: Path, gt: Path) -> list[tuple[str, list[Pair]]]:
    """Videos paired by name, each with its frames paired by relative path, in sorted order."""
    preds, pred_is_set = list_videos(pred, "--pred")
    gts, gt_is_set = list_videos(gt, "--gt")
    if pred_is_set != gt_is_set:
        raise InputError(f"--pred {pred} and --gt {gt} differ in layout: one is a folder of frames, the other a "
                         "folder of video folders", fix="give both the same layout")
    if pred_is_set:
        missing, extra = sorted(set(gts) - set(preds)), sorted(set(preds) - set(gts))
        if missing or extra:
            parts = ([f"{len(missing)} ground-truth video(s) without prediction (first: {missing[0]!r})"]
                     if missing else []) + ([f"{len(extra)} predicted video(s) without ground truth (first: "
                                             f"{extra[0]!r})"] if extra else [])
            raise InputError(f"--pred {pred} and --gt {gt}: video names differ: " + "; ".join(parts),
                             fix="name each predicted video folder like its ground-truth folder")
        return [(name, pair_paths(preds[name], gts[name])) for name in sorted(gts)]
    return [(gt.name, pair_paths(pred, gt))]


def _read_frames(paths: tuple[Path, ...], sizes_from: tuple[Path, ...] | None) -> np.ndarray:
    """Frames as one (T, H, W, 3) array: uint8 when every frame is 8-bit, else float32 in [0, 1]
    (uint8 / 255 in float32, exactly what the reference's division gives)."""
    frames = []
    for i, path in enumerate(paths):
        frame = read_prediction(path)
        if sizes_from is not None:
            ref_size = image_size(sizes_from[i])
            if frame.shape[1::-1] != ref_size:
                raise InputError(f"{path}: prediction is {frame.shape[1]}x{frame.shape[0]} but ground truth "
                                 f"{sizes_from[i]} is {ref_size[0]}x{ref_size[1]} (WxH)",
                                 fix="predict at the ground truth's resolution")
        if frames and frame.shape[:2] != frames[0].shape[:2]:
            raise InputError(f"{path}: frame size {frame.shape[1]}x{frame.shape[0]} differs from {paths[0]}",
                             fix="all frames of a video must have one size")
        frames.append(frame)
    if any(f.dtype != np.uint8 for f in frames):
        frames = [to_unit_float32(f) for f in frames]
    return np.stack(frames)


def clip_pairs(videos: list[tuple[str, list[Pair]]], clip_len: int | None, stride: int | None) -> list[Any]:
    """The set's ``ClipPair``s (frames are read when a clip is scored, one clip at a time)."""
    from triptych.metrics.vfid import ClipPair

    pairs = []
    for name, frames in videos:
        if clip_len is None:
            spans = [(0, len(frames))]
        else:
            starts = clip_starts(len(frames), clip_len, stride or clip_len)
            if not starts:
                raise InputError(f"video {name!r} has {len(frames)} frames, fewer than --clip-len {clip_len}",
                                 fix="lower --clip-len, or leave that video out")
            spans = [(s, s + clip_len) for s in starts]
        for start, end in spans:
            chunk = frames[start:end]
            gt_paths = tuple(p.gt for p in chunk)
            pred_paths = tuple(p.pred for p in chunk)
            first, last = Path(chunk[0].sample_id).name, Path(chunk[-1].sample_id).name
            key = name if clip_len is None else f"{name}/{first}-{last}"
            pairs.append(ClipPair(key, functools.partial(_read_frames, gt_paths, None),
                                  functools.partial(_read_frames, pred_paths, gt_paths)))
    return pairs


# --- the kind ----------------------------------------------------------------------------------------------------

def _plan(m: Any) -> tuple[int | None, int | None, list[tuple[str, list[Pair]]], list[Any]]:
    """Options, paired videos and clips of a measurement; every input error is raised here."""
    clip_len, stride = clip_options(m.inputs.clip_len, m.inputs.clip_stride)
    videos = pair_videos(Path(m.inputs.pred), Path(m.inputs.gt))
    pairs = clip_pairs(videos, clip_len, stride)
    if len(pairs) < 2:
        raise InputError(
            f"{m.metric.name} is a set metric and needs at least two videos (or clips); got {len(pairs)}",
            fix="pass a folder with one sub-folder per video, or cut clips with --clip-len N --clip-stride S")
    return clip_len, stride, videos, pairs


def check(m: Any, score: Callable[..., Any]) -> None:
    """The layout, the video pairing, the clip options and the two-video minimum, checked before any
    weights are looked up (nothing is read but folder listings)."""
    _plan(m)


def run(m: Any, score: Callable[..., Any]) -> None:
    clip_len, stride, videos, pairs = _plan(m)
    offered = {"weights": m.inputs.weights}  # --weights, the input ``weights`` the variant declares
    kwargs = bind(m.variant.inputs, offered, f"{m.metric.name}:{m.variant.name}")
    result = score(pairs, **kwargs, **m.variant.params)
    n = len(result.clip_ids)
    unit = "videos" if clip_len is None else f"videos (clips of {clip_len} frames, stride {stride}, from " \
                                              f"{len(videos)} video folder{'s' if len(videos) != 1 else ''})"
    m.weights = [result.weights]
    if m.inputs.weights is not None:  # labels the rows VARIANT+user-<sha8> unless it is the registry's file
        m.user_trunk = {**result.weights, "replaces": m.variant.weights[0]}
    m.aggregate = SetValue(result.value, n, f"frechet distance over {n} {unit}")
    m.extras.update(result.extras())
    m.extras.update(clip_len=clip_len, clip_stride=stride, videos=[name for name, _ in videos])
