"""Temporal consistency of a predicted video: tLP (TecoGAN), FloLPIPS (Danier et al.) and DEVIL's patch
consistency. Each function takes the predicted and ground-truth frames of one video ((H, W, 3) uint8, or
float32 in [0, 1]) and returns one value per scored frame pair; ``measure_kinds/video_frames.py`` takes
the mean per video, then over videos.

- ``tlp`` (Chu et al., "Learning Temporal Coherence via Self-Supervision for GAN-based Video Generation",
  TOG 2020; thunil/TecoGAN @ 069d983 ``metrics.py``): for consecutive frames,
  ``|LPIPS(gt_t-1, gt_t) - LPIPS(pred_t-1, pred_t)|`` with LPIPS AlexNet v0.1 (TecoGAN vendors
  PerceptualSimilarity's ``DistModel`` 'net-lin' 'alex'). Variant ``tecogan`` does what the script does:
  drops 2 frames at each end (``cutfr = 2``: frames 2..T-3 are scored, pairs (t-1, t) for t = 3..T-3)
  and centre-crops each frame with ``crop_8x8`` (sides rounded down to a multiple of 32, then 32 less
  while within 16 px of the side). Stored raw; TecoGAN prints it x100.
- ``flolpips`` (Danier, Zhang and Bull, "FloLPIPS: A Bespoke Video Quality Metric for Frame
  Interpolation", PCS 2022), the arithmetic of VFIBenchmark (PerVFI) @ 40a05ec
  ``metrics/flolpips/__init__.py`` ``FloLPIPS.forward(ref, dis, flow_ref - flow_dis, normalize=True)``:
  for t = 0..T-2, LPIPS AlexNet v0.1 between gt_t and pred_t where each tap's distance map is averaged with
  the weights ``|F_gt(t->t+1) - F_pred(t->t+1)|`` (the flow-difference magnitude, resized bilinearly,
  align_corners False, to the tap's size, normalised to sum 1 over each frame pair: ``mw_spatial_average``
  sums over dims 1, 2, 3), summed over taps. danier97/flolpips @ 26ea00f normalises by the sum over the
  whole batch instead, so its value depends on the batch; it is not followed. The reference uses PWC-Net
  flows and reads frames through a yuv420p round trip. Variant ``pwcnet`` takes its flows from the
  checkpoint-compatible port ``triptych.metrics.pwcnet`` (registered weights ``pwcnet_default``; uint8 RGB
  / 255, float predictions rounded to uint8 for the flow only) on the RGB frames as given; variant
  ``dis`` uses OpenCV DIS flows (``triptych.vision.flow.dis_flow``, float predictions rounded to uint8
  for the flow only) on the RGB frames as given. Where the two flows agree exactly the weights are
  undefined (the reference divides by 0); the value is then 0 if the LPIPS maps are all 0 (identical
  frames), else an error.
- ``pcons_psnr`` (Szeto and Corso, "The DEVIL is in the Details: A Diagnostic Evaluation Benchmark for
  Video Inpainting", CVPR 2022; MichiganCOG/video-inpainting-evaluation @ d339a12
  ``pcons_psnr_computer.py`` / ``pcons_psnr_mask_computer.py``): on the composited prediction (DEVIL's
  ``get_comp_frame``: the prediction inside the hole, the ground truth elsewhere; with no masks the
  prediction is taken as already composited) in float32 [0, 1], for t = 1..T-1 a 50x50 patch of frame
  t-1 is compared with every 50x50 patch of frame t whose top-left corner is within [-20, 19] rows and
  columns of it and lies inside the frame; the pair's value is skimage's PSNR (data_range 1, float32
  difference, float64 mean) of the best patch (inf for an exact match). Variant ``devil`` draws the
  patch's top-left corner with ``rng.integers(H - 50)`` then ``rng.integers(W - 50)`` from ONE
  ``numpy.random.default_rng(1234)`` shared by all videos in sorted order, as DEVIL does (so a video's
  value depends on the videos scored before it); variant ``devil-hole`` places the patch at
  ``floor(centroid of frame t-1's hole - 25)``, clipped into the frame.
- ``pcons_ssim`` (DEVIL @ d339a12 ``pcons_ssim_computer.py``): the same random placement (its own RNG,
  seed 1234) with SSIM in place of PSNR: scikit-image 0.17.2 ``structural_similarity(patch_a, patch_b,
  multichannel=True)`` on float32 [0, 1] patches, i.e. ``ssim:devil``'s formula (data range 2), the
  highest-SSIM match kept and its SSIM the pair's value.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from triptych.errors import InputError
from triptych.metrics.convert import to_unit_float32
from triptych.metrics.perceptual import LpipsNet, composite, device, lpips_network, lpips_value, to_lpips_input


def check_video(pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray]) -> None:
    """A video metric's frames: as many predicted as ground-truth frames, and at least one consecutive pair
    (docs/protocols/video_completion.md); an ``InputError`` naming the counts if not."""
    if len(pred_frames) != len(gt_frames):
        raise InputError(f"{len(pred_frames)} predicted frames but {len(gt_frames)} ground-truth frames",
                         fix="predict every frame of the video")
    if len(gt_frames) < 2:
        raise InputError(f"{len(gt_frames)} frame: no consecutive pair", fix="give at least 2 frames per video")


# --- tLP ---------------------------------------------------------------------------------------------------

def crop_8x8(image: np.ndarray) -> np.ndarray:
    """TecoGAN's centre crop: each side rounded down to a multiple of 32, minus 32 while within 16 px of it.

    >>> crop_8x8(np.zeros((240, 432, 3))).shape
    (224, 416, 3)
    """
    h0, w0 = image.shape[:2]
    h, w = (h0 // 32) * 32, (w0 // 32) * 32
    while h > h0 - 16:
        h -= 32
    while w > w0 - 16:
        w -= 32
    if h <= 0 or w <= 0:
        raise InputError(f"frame {w0}x{h0} is too small for TecoGAN's crop_8x8", fix="use variant all-pairs")
    y, x = (h0 - h) // 2, (w0 - w) // 2
    return image[y:y + h, x:x + w]


def tlp_values(network: LpipsNet, pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray],
               cut: int, crop: bool) -> list[float]:
    """tLP of each pair (t-1, t), t = cut+1 .. T-cut-1, with a given LPIPS network (raw, not x100)."""
    check_video(pred_frames, gt_frames)
    first, stop = cut + 1, len(gt_frames) - cut
    if stop <= first:
        raise InputError(f"{len(gt_frames)} frames leave no pair after dropping {cut} at each end",
                         fix=f"give at least {2 * cut + 2} frames, or use variant all-pairs")
    prep = crop_8x8 if crop else (lambda image: image)
    pred, gt = [prep(f) for f in pred_frames], [prep(f) for f in gt_frames]
    return [abs(lpips_value(network, gt[t - 1], gt[t]) - lpips_value(network, pred[t - 1], pred[t]))
            for t in range(first, stop)]


def tlp(pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray], cut: int = 2, crop: bool = True,
        net: str = "alex", trunk: Path | None = None) -> list[float]:
    """Metric ``tlp`` with the registered LPIPS weights (``trunk``: a user's trunk file instead)."""
    return tlp_values(lpips_network(net, trunk), pred_frames, gt_frames, cut, crop)


# --- FloLPIPS ----------------------------------------------------------------------------------------------

def flow_weighted_lpips(network: LpipsNet, pred: np.ndarray, gt: np.ndarray, flow_error: np.ndarray) -> float:
    """LPIPS of (gt, pred) with each tap's map averaged under the weights |flow_error| (H, W, 2), normalised."""
    x0, x1 = to_lpips_input(gt, "ground truth").to(device()), to_lpips_input(pred, "prediction").to(device())
    flow = torch.from_numpy(np.ascontiguousarray(flow_error.transpose(2, 0, 1), dtype=np.float32))[None].to(device())
    total = 0.0
    with torch.no_grad():
        for layer in network.layer_maps(x0, x1):
            resized = F.interpolate(flow, size=layer.shape[-2:], mode="bilinear", align_corners=False)
            magnitude = torch.sqrt(resized[:, 0:1] ** 2 + resized[:, 1:2] ** 2).double()
            norm = float(magnitude.sum())
            if norm == 0.0:
                if float(layer.abs().max()) == 0.0:
                    continue
                raise InputError("the predicted and ground-truth flows agree exactly but the frames differ, so "
                                 "FloLPIPS's flow weights are undefined (0 / 0)",
                                 fix="score this video with lpips instead")
            total += float((layer.double() * magnitude / norm).sum())
    return total


def _uint8(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint8:
        return frame
    return np.round(np.clip(frame.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def flolpips_values(network: LpipsNet, pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray],
                    flow: Any) -> list[float]:
    """FloLPIPS of each t = 0..T-2 with a given network and flow function ``flow(a, b) -> (H, W, 2)``."""
    check_video(pred_frames, gt_frames)
    values = []
    for t in range(len(gt_frames) - 1):
        error = (flow(_uint8(gt_frames[t]), _uint8(gt_frames[t + 1]))
                 - flow(_uint8(pred_frames[t]), _uint8(pred_frames[t + 1])))
        values.append(flow_weighted_lpips(network, pred_frames[t], gt_frames[t], error))
    return values


def flolpips(pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray], flow: str = "dis",
             net: str = "alex", trunk: Path | None = None) -> list[float]:
    """Metric ``flolpips`` with the registered LPIPS weights (``trunk``: a user's trunk file instead) and
    the named flow backend: ``dis`` (OpenCV DIS) or ``pwcnet`` (the registered PWC-Net, ``metrics/pwcnet.py``)."""
    from triptych.vision.flow import dis_flow
    from triptych.metrics.pwcnet import pwc_flow_function

    backends = {"dis": lambda: dis_flow, "pwcnet": pwc_flow_function}
    if flow not in backends:
        raise InputError(f"unknown FloLPIPS flow backend {flow!r}", fix=f"use flow: {' or '.join(backends)}")
    network = lpips_network(net, trunk)
    return flolpips_values(network, pred_frames, gt_frames, backends[flow]())


# --- DEVIL patch consistency -------------------------------------------------------------------------------

def patch_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """skimage ``peak_signal_noise_ratio(a, b)`` of float32 [0, 1] patches: data_range 1, float32 difference
    squared, float64 mean; inf when equal."""
    mse = float(np.mean(np.square(a - b), dtype=np.float64))
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def _candidates(frame_b: np.ndarray, y: int, x: int, patch: int, search: int) -> tuple[range, range]:
    """Top-left rows and columns of DEVIL's search: y + [-search, search) by x + [-search, search), those
    whose patch lies inside ``frame_b``."""
    h, w = frame_b.shape[:2]
    return (range(max(y - search, 0), min(y + search, h - patch + 1)),
            range(max(x - search, 0), min(x + search, w - patch + 1)))


def best_patch_psnr(frame_a: np.ndarray, frame_b: np.ndarray, y: int, x: int, patch: int, search: int) -> float:
    """PSNR of the patch of ``frame_a`` at (y, x) against its best match in ``frame_b`` (DEVIL's search loop,
    ``_candidates``)."""
    source = frame_a[y:y + patch, x:x + patch]
    ys, xs = _candidates(frame_b, y, x, patch, search)
    windows = np.lib.stride_tricks.sliding_window_view(frame_b, (patch, patch), axis=(0, 1))
    block = windows[ys.start:ys.stop, xs.start:xs.stop].transpose(0, 1, 3, 4, 2)  # (ny, nx, p, p, 3)
    mse = np.mean(np.square(block - source), axis=(2, 3, 4), dtype=np.float64)
    iy, ix = np.unravel_index(int(np.argmin(mse)), mse.shape)  # first minimum = DEVIL's first strict maximum
    return patch_psnr(source, frame_b[ys.start + iy:ys.start + iy + patch, xs.start + ix:xs.start + ix + patch])


def best_patch_ssim(frame_a: np.ndarray, frame_b: np.ndarray, y: int, x: int, patch: int, search: int) -> float:
    """DEVIL's ``pcons_ssim_computer.py`` search: the highest SSIM (``ssim:devil``'s formula, the patch of
    ``frame_a`` as skimage's first image) over the candidates in raster order, the first one kept on ties;
    DEVIL starts from 0 with a strict ``>``, so a pair whose every candidate scores <= 0 has no best patch
    (DEVIL then crashes): refused here."""
    from triptych.metrics.ssim import ssim_devil

    source = frame_a[y:y + patch, x:x + patch]
    ys, xs = _candidates(frame_b, y, x, patch, search)
    best = max(ssim_devil(frame_b[by:by + patch, bx:bx + patch], source) for by in ys for bx in xs)
    if not best > 0.0:
        raise InputError(f"no patch of the next frame within {search} px has a positive SSIM with the "
                         f"{patch}x{patch} patch at ({y}, {x}), so DEVIL's PCons-SSIM is undefined",
                         fix="check that the frames belong to one video")
    return best


def _patch_consistency(best: Any, pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray],
                       masks: Sequence[np.ndarray] | None, state: dict[str, Any] | None, placement: str,
                       patch: int, search: int, seed: int) -> list[float]:
    """DEVIL's patch consistency of each pair (t-1, t), t = 1..T-1, with ``best(frame_a, frame_b, y, x,
    patch, search)`` scoring the placed patch against its best match (module docstring)."""
    check_video(pred_frames, gt_frames)
    if masks is not None and len(masks) != len(gt_frames):
        raise InputError(f"{len(masks)} masks for {len(gt_frames)} frames", fix="give one mask per frame")
    frames = [to_unit_float32(composite(p, g, m) if masks is not None else p)
              for p, g, m in zip(pred_frames, gt_frames, masks if masks is not None else [None] * len(gt_frames))]
    h, w = frames[0].shape[:2]
    if h <= patch or w <= patch:
        raise InputError(f"frames of {w}x{h} are not larger than the {patch}-px patch", fix="use larger frames")
    state = {} if state is None else state
    rng = state.setdefault("rng", np.random.default_rng(seed))
    values = []
    for t in range(1, len(frames)):
        if placement == "random":
            y, x = int(rng.integers(h - patch)), int(rng.integers(w - patch))
        elif placement == "hole":
            assert masks is not None
            rows, cols = np.nonzero(np.asarray(masks[t - 1]) > 0)
            if rows.size == 0:
                raise InputError(f"frame {t - 1} has an empty hole, so the hole-centred patch is undefined",
                                 fix="use variant devil, or give masks with a hole in every frame")
            y = int(np.clip(math.floor(rows.mean() - patch / 2), 0, h - patch))
            x = int(np.clip(math.floor(cols.mean() - patch / 2), 0, w - patch))
        else:
            raise InputError(f"unknown patch placement {placement!r}", fix="use random or hole")
        values.append(best(frames[t - 1], frames[t], y, x, patch, search))
    return values


def pcons_psnr(pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray],
               masks: Sequence[np.ndarray] | None = None, state: dict[str, Any] | None = None,
               placement: str = "random", patch: int = 50, search: int = 20, seed: int = 1234) -> list[float]:
    """Metric ``pcons_psnr``: DEVIL's patch consistency of each pair (t-1, t), t = 1..T-1 (module docstring)."""
    return _patch_consistency(best_patch_psnr, pred_frames, gt_frames, masks, state, placement, patch, search, seed)


def pcons_ssim(pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray],
               masks: Sequence[np.ndarray] | None = None, state: dict[str, Any] | None = None,
               patch: int = 50, search: int = 20, seed: int = 1234) -> list[float]:
    """Metric ``pcons_ssim``: DEVIL's ``pcons_ssim_computer.py``, as ``pcons_psnr`` (random placement, its own
    ``default_rng(1234)`` shared across videos) with the best match and the value by ``ssim:devil``'s SSIM."""
    return _patch_consistency(best_patch_ssim, pred_frames, gt_frames, masks, state, "random", patch, search, seed)


def pcons_psnr_hole(pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray],
                    masks: Sequence[np.ndarray], patch: int = 50, search: int = 20) -> list[float]:
    """Metric ``pcons_psnr``, variant ``devil-hole``: the patch centred on the hole (masks required)."""
    return pcons_psnr(pred_frames, gt_frames, masks, placement="hole", patch=patch, search=search)
