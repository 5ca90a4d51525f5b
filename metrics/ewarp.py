"""E_warp, the flow warping error of Lai et al. 2018, as pure functions.

Protocol (docs/protocols/video_completion.md, "E_warp"; fixtures/ewarp/tennis/README.md), reference
phoenix104104/fast_blind_video_consistency @ bce0c7e: ``evaluate_WarpError.py``,
``compute_flow_occlusion.py``, ``utils.py`` and the Resample2d forward kernel:

- Pair (t, t+1), t = 0..T-2: frame t+1 is backward-warped into frame t's grid with the forward flow
  F = F_(t->t+1): ``W(x) = I_(t+1)(x + F(x))`` (``triptych.vision.flow.warp_backward``).
- Occlusion in frame t's grid (``triptych.vision.flow.occlusion_mask``): the reference calls ``detect_occlusion(bw, fw)``,
  the reverse of its parameter names, so B_w = B(x + F(x)) is the backward flow B = F_(t+1->t) warped
  by F, and the motion boundary is taken on the FORWARD flow.
- Per pair (``pair_error``): mean squared RGB error over the non-occluded pixels and 3 channels, on
  uint8 / 255 float32 frames; the warped frame is not clipped.
- Per video (``video_ewarp``): the mean over pairs, accumulated in float32 as the reference does.
  Dataset (``dataset_ewarp``): the mean of the per-video values.

Values are raw: the papers print E_warp x 100 (header "E_warp x 10^-2"), and that scale is applied
only to the reported rows. The flows come from the ground-truth frames (``triptych.vision.flow``),
and every variant (``ewarp_files``, ``ewarp_dis``, ``ewarp_raft``) names its flow backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import cv2
import numpy as np

from triptych.errors import InputError, TriptychError
from triptych.metrics.convert import to_unit_float32
from triptych.vision import flow as flowlib
from triptych.vision.flow import FlowPair

@dataclass(frozen=True)
class PairError:
    """One pair's error ``value = sse / n``; ``n`` = 3 x non-occluded pixels (H x W x 3 if none is visible)."""

    value: float
    sse: float
    n: int
    occluded: int


@dataclass(frozen=True)
class VideoEwarp:
    """E_warp of one video: ``value`` (float32 mean over pairs), the pairs, and the flow provenance."""

    value: float
    pairs: tuple[PairError, ...]
    flow: dict[str, Any] = field(default_factory=dict)

    @property
    def per_pair(self) -> list[float]:
        return [p.value for p in self.pairs]

    @property
    def occluded_pixels(self) -> list[int]:
        return [p.occluded for p in self.pairs]


# --------------------------------------------------------------------------------------------------
# Errors


def masked_error(warped: np.ndarray, frame_t: np.ndarray, occluded: np.ndarray,
                 empty: float | None = None) -> PairError:
    """Mean squared error of ``warped`` against ``frame_t`` over the non-occluded pixels and 3 channels.

    ``sse`` is the sum of the squared differences over the non-occluded pixels (accumulated in float64).
    ``n`` is 3 x the number of non-occluded pixels, or H x W x 3 if every pixel is occluded
    (evaluate_WarpError.py); with ``empty`` given, that case's value is ``empty`` instead (DEVIL's NaN).
    ``frame_t`` is uint8 (read as uint8 / 255 float32) or float in [0, 1].
    """
    it = to_unit_float32(frame_t)
    warped = np.asarray(warped, dtype=np.float32)
    if warped.shape != it.shape or it.ndim != 3 or it.shape[2] != 3:
        raise InputError(f"frames of one pair must be (H, W, 3) of one size, got {warped.shape} and {it.shape}",
                         fix="all frames of a video must have one size")
    if occluded.shape != it.shape[:2]:
        raise InputError(f"occlusion mask {occluded.shape} does not match the frame size {it.shape[:2]}")
    visible = ~np.asarray(occluded, dtype=bool)
    squared = np.subtract(warped, it)
    np.square(squared, out=squared)
    sse = float(np.sum(squared, where=visible[..., None], dtype=np.float64))
    count = int(visible.sum())
    n = 3 * count if count > 0 else it.shape[0] * it.shape[1] * 3
    value = empty if count == 0 and empty is not None else sse / n
    return PairError(value, sse, n, int(occluded.size - count))


def pair_error(frame_t: np.ndarray, frame_next: np.ndarray, forward: np.ndarray,
               occluded: np.ndarray) -> PairError:
    """Warping error of pair t (evaluate_WarpError.py): frame t+1 warped into frame t's grid by the
    forward flow (``warp_backward``, not clipped), then ``masked_error`` against frame t.

    Frames are uint8 RGB (read as uint8 / 255 float32), or float arrays in [0, 1] taken as they are.
    """
    inext = to_unit_float32(frame_next)
    if inext.ndim != 3 or inext.shape[:2] != forward.shape[:2]:
        raise InputError(f"frame t+1 {inext.shape} does not match the flow {forward.shape}",
                         fix="compute the flows on frames of the scored size")
    return masked_error(flowlib.warp_backward(inext, forward), frame_t, occluded)


def warping_pair_error(frame_t: np.ndarray, frame_next: np.ndarray, forward: np.ndarray,
                       backward: np.ndarray) -> PairError:
    """``pair_error(frame_t, frame_next, F, occlusion_mask(F, B))`` (the same numbers) with one set of
    bilinear taps of F: frame t+1 and B are warped together, B_w feeds the occlusion test. Flows checked
    by ``checked_flows``."""
    frame_next = to_unit_float32(frame_next)
    if frame_next.ndim != 3 or frame_next.shape[:2] != forward.shape[:2]:
        raise InputError(f"frame t+1 {frame_next.shape} does not match the flow {forward.shape}",
                         fix="compute the flows on frames of the scored size")
    warped = flowlib.sample(flowlib.bilinear_taps(forward), np.concatenate([frame_next, backward], axis=2))
    return masked_error(cv2.merge(warped[:3]), frame_t, flowlib.occlusion_from_warped(forward, warped[3:]))


def mean_float32(values: Sequence[float]) -> float:
    """Mean accumulated in float32, in order, as the reference's ``err += ...; err / (T-1)`` does."""
    if not values:
        raise TriptychError("E_warp of a video with no frame pair is undefined",
                            fix="E_warp needs at least 2 frames per video")
    total = np.float32(0.0)
    for value in values:
        total = np.float32(total + np.float32(value))
    return float(total / np.float32(len(values)))


def checked_flows(frames: Sequence[np.ndarray], flows: Iterable[FlowPair]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The (forward, backward) flows of pairs 0..T-2, each checked against its frame's size; exactly one
    pair of flows per frame pair. Yielded one pair at a time, as ``flows`` makes them, so a caller that
    scores pair t before asking for pair t + 1 reads the frames in order and holds one pair of flows
    (the benchmarks decode each frame once: docs/performance.md)."""
    if len(frames) < 2:
        raise InputError(f"a video of {len(frames)} frame(s) has no frame pair",
                         fix="E_warp needs at least 2 frames per video")
    count = 0
    for t, pair in enumerate(flows):
        if t >= len(frames) - 1:
            raise InputError(f"more flow pairs than the {len(frames) - 1} frame pairs of the video",
                             fix="compute the flows on the frames that are scored")
        shape = np.asarray(frames[t]).shape[:2]
        yield (flowlib.check_flow(pair.forward, f"forward flow of pair {t}", shape),
               flowlib.check_flow(pair.backward, f"backward flow of pair {t}", shape))
        count += 1
    if count != len(frames) - 1:
        raise InputError(f"{count} flow pair(s) for the {len(frames) - 1} frame pairs of the video",
                         fix="give one forward and one backward flow per pair t = 0..T-2")


def video_ewarp(frames: Sequence[np.ndarray], flows: Iterable[FlowPair],
                flow_provenance: dict[str, Any] | None = None) -> VideoEwarp:
    """E_warp of one video: frames 0..T-1 with the flows of pairs 0..T-2 (from the ground truth)."""
    pairs = [warping_pair_error(frames[t], frames[t + 1], forward, backward)
             for t, (forward, backward) in enumerate(checked_flows(frames, flows))]
    return VideoEwarp(mean_float32([p.value for p in pairs]), tuple(pairs), dict(flow_provenance or {}))


def hole_pair_error(frame_t: np.ndarray, frame_next: np.ndarray, forward: np.ndarray, backward: np.ndarray,
                    hole_t: np.ndarray, hole_next: np.ndarray) -> PairError:
    """DEVIL's masked warping error of pair t (``warp_error_mask_computer.py``): frame t+1 warped into frame
    t's grid, the squared error averaged over the non-occluded pixels (``occlusion_mask(F, B)``) whose flow
    touches a hole: frame t's hole, or frame t+1's hole indicator (1 in the hole) warped by the same flow
    > 0. ``value`` is NaN when no pixel qualifies (DEVIL's ``nanmean`` then skips the pair). Frame t+1,
    its hole indicator and B are warped with one set of bilinear taps of F."""
    indicator = (np.asarray(hole_next) > 0).astype(np.float32)[..., None]
    warped = flowlib.sample(flowlib.bilinear_taps(forward),
                            np.concatenate([to_unit_float32(frame_next), indicator, backward], axis=2))
    touched = (np.asarray(hole_t) > 0) | (warped[3] > 0)
    return masked_error(cv2.merge(warped[:3]), frame_t, flowlib.occlusion_from_warped(forward, warped[4:]) | ~touched,
                        empty=math.nan)


def video_ewarp_masked(frames: Sequence[np.ndarray], holes: Sequence[np.ndarray], flows: Iterable[FlowPair],
                       flow_provenance: dict[str, Any] | None = None) -> VideoEwarp:
    """DEVIL's masked E_warp of one (composited) video: ``np.nanmean`` over its pairs' ``hole_pair_error``."""
    pairs = [hole_pair_error(frames[t], frames[t + 1], forward, backward, holes[t], holes[t + 1])
             for t, (forward, backward) in enumerate(checked_flows(frames, flows))]
    values = np.array([p.value for p in pairs], dtype=np.float64)
    if np.isnan(values).all():
        raise InputError("no visible pixel touches a hole in any frame pair, so the masked warping error is "
                         "undefined", fix="check the masks (> 0 = hole), or score with ewarp")
    return VideoEwarp(float(np.nanmean(values)), tuple(pairs), dict(flow_provenance or {}))


def dataset_ewarp(values: Sequence[float]) -> float:
    """Dataset E_warp: the mean of the per-video values (not pooled over pairs)."""
    if len(values) == 0:
        raise TriptychError("E_warp over no video is undefined", fix="score at least one video")
    return float(np.mean(np.asarray(values, dtype=np.float64)))


# --------------------------------------------------------------------------------------------------
# Metric variants: one per flow backend (metrics/specs/ewarp.yaml). Signature of the video_flow kind:
# fn(pred_frames, gt_frames, [flow_dir]) -> VideoEwarp. A required ``flow_dir`` means --flow-dir is
# required; a variant without ``flow_dir`` refuses it.


def _check_video(pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray]) -> tuple[int, int]:
    """The frame size (H, W) of a video; the prediction must have as many frames as the ground truth."""
    if len(pred_frames) != len(gt_frames):
        raise InputError(f"{len(pred_frames)} predicted frames for {len(gt_frames)} ground-truth frames",
                         fix="predict every frame of the video")
    if len(gt_frames) < 2:
        raise InputError(f"a video of {len(gt_frames)} frame(s) has no frame pair",
                         fix="E_warp needs at least 2 frames per video")
    height, width = np.asarray(gt_frames[0]).shape[:2]
    return int(height), int(width)


def ewarp_files(pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray], flow_dir: Path) -> VideoEwarp:
    """Variant ``files``: E_warp of the prediction with stored ground-truth flows from ``flow_dir``."""
    shape = _check_video(pred_frames, gt_frames)
    provenance = flowlib.files_provenance(flow_dir, len(gt_frames))
    return video_ewarp(pred_frames, flowlib.file_flow_pairs(flow_dir, len(gt_frames), shape), provenance)


def ewarp_dis(pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray]) -> VideoEwarp:
    """Variant ``dis``: E_warp of the prediction with OpenCV DIS flows of the ground truth."""
    _check_video(pred_frames, gt_frames)
    return video_ewarp(pred_frames, flowlib.dis_flow_pairs(gt_frames), flowlib.dis_provenance())


def ewarp_raft(pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray],
               trunk: Path | None = None) -> VideoEwarp:
    """Variant ``raft``: E_warp of the prediction with torchvision RAFT-Large flows of the ground truth
    (``trunk``: a user's RAFT-Large file in place of the registry's, ``measure --weights``)."""
    _check_video(pred_frames, gt_frames)
    return video_ewarp(pred_frames, flowlib.raft_flow_pairs(gt_frames, trunk=trunk),
                       flowlib.raft_provenance(trunk=trunk))


def _composited(pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray],
                masks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """DEVIL's ``get_comp_frame`` of every frame (the prediction in the hole, the ground truth elsewhere)."""
    from triptych.metrics.perceptual import composite

    if len(masks) != len(gt_frames):
        raise InputError(f"{len(masks)} masks for {len(gt_frames)} frames", fix="give one mask per frame")
    return [composite(p, g, m) for p, g, m in zip(pred_frames, gt_frames, masks)]


def ewarp_masked_files(pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray],
                       masks: Sequence[np.ndarray], flow_dir: Path) -> VideoEwarp:
    """Metric ``ewarp_masked``, variant ``files``: DEVIL's masked E_warp with stored ground-truth flows."""
    shape = _check_video(pred_frames, gt_frames)
    frames = _composited(pred_frames, gt_frames, masks)
    return video_ewarp_masked(frames, masks, flowlib.file_flow_pairs(flow_dir, len(gt_frames), shape),
                              flowlib.files_provenance(flow_dir, len(gt_frames)))


def ewarp_masked_dis(pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray],
                     masks: Sequence[np.ndarray]) -> VideoEwarp:
    """Metric ``ewarp_masked``, variant ``dis``: DEVIL's masked E_warp with OpenCV DIS flows of the ground truth."""
    _check_video(pred_frames, gt_frames)
    frames = _composited(pred_frames, gt_frames, masks)
    return video_ewarp_masked(frames, masks, flowlib.dis_flow_pairs(gt_frames), flowlib.dis_provenance())
