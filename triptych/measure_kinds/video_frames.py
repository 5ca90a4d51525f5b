"""Temporal video metrics over consecutive frames (tLP, FloLPIPS, patch consistency): one value per video,
the mean over its frame pairs; the dataset value is the mean over videos.

``--pred`` / ``--gt`` are laid out as for ``video_flow`` (a folder of frames is one video; a folder of
folders one video per sub-folder; frames pair by relative path, in sorted order). The variant's callable
is ``fn(pred_frames, gt_frames[, masks][, state], **params) -> list[float]`` (one value per scored pair):

- a variant that declares the input ``masks`` required needs ``--mask`` (a folder laid out like ``--gt``,
  > 0 = hole); declared optional, ``--mask`` is optional; undeclared, ``--mask`` is refused;
- a variant that declares ``state`` receives one dict shared by every video of the measurement, in sorted
  video order, for formulas whose source carries state across videos (DEVIL's one patch RNG).

The declared inputs are the ``inputs`` of the variant's registry entry (``triptych.inputs``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from triptych.errors import InputError
from triptych.inputs import bind
from triptych.measure_kinds.masked_image import check_masks_option, mask_paths, video_masks
from triptych.measure_kinds.video_flow import group_videos
from triptych.media import check_same_size, pair_paths, read_prediction, read_rgb
from triptych.metrics.aggregate import SampleMean

OPTIONS: frozenset[str] = frozenset({"--mask"})
REDUCTION = "mean over videos of the per-video value (each the mean over the video's scored frame pairs)"


def check(m: Any, fn: Callable[..., Any]) -> None:
    metric = f"{m.metric.name}:{m.variant.name}"
    check_masks_option(m, refused_fix="drop --mask")
    if Path(m.inputs.pred).is_file() or Path(m.inputs.gt).is_file():
        raise InputError(f"{metric} scores videos: --pred and --gt must be folders of frames (or of videos)",
                         fix="point --pred and --gt at a folder of frames, or a folder of video folders")


def run(m: Any, fn: Callable[..., Any]) -> None:
    gt_root = Path(m.inputs.gt)
    pairs = pair_paths(m.inputs.pred, gt_root)
    masks = mask_paths(pairs, Path(m.inputs.mask), gt_root) if m.inputs.mask is not None else None
    state: dict[str, Any] = {}
    m.aggregate = SampleMean(reduction=REDUCTION)
    per_pair: dict[str, list[float]] = {}
    for video, frames in m.track(group_videos(pairs, gt_root).items(), lambda item: item[0], "videos"):
        gt_frames, pred_frames = [], []
        for pair in frames:
            gt, pred = read_rgb(pair.gt), read_prediction(pair.pred)
            check_same_size(pred, gt, pair)
            gt_frames.append(gt)
            pred_frames.append(pred)
        if len(frames) < 2:
            raise InputError(f"--gt video {video!r}: {len(frames)} frame, so no consecutive pair",
                             fix="temporal metrics need at least 2 frames per video")
        offered = {"state": state, **video_masks(masks, frames)}
        kwargs = bind(m.variant.inputs, offered, f"{m.metric.name}:{m.variant.name}")
        try:
            values = [float(v) for v in fn(pred_frames, gt_frames, **kwargs, **m.params)]
        except InputError as exc:
            raise InputError(f"video {video!r} ({frames[0].gt.parent}): {exc.message}", fix=exc.fix) from exc
        value = float(np.mean(np.asarray(values, dtype=np.float64)))
        m.aggregate.update(value)
        m.per_sample.append((video, value))
        per_pair[video] = values
    m.extras["per_pair"] = per_pair
