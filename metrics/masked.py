"""PSNR and SSIM over one region of a frame: the hole (mask > 0) or its complement, the valid pixels.

What DEVIL does, and what it does not (Szeto & Corso, "The DEVIL is in the Details", ICCV 2021; its
metrics are the submodule MichiganCOG/video-inpainting-evaluation @ d339a12, ``src/compute_metrics``):

- DEVIL defines **no hole-only PSNR or SSIM**. Its ``psnr`` / ``ssim`` / ``lpips`` are whole-frame metrics
  of the *composited* prediction ``C = M * G + (1 - M) * P`` (``common_util/image.py get_comp_frame``;
  DEVIL's mask is a mode-'1' PNG with **0 = hole**, the opposite of the > 0 = hole convention here), so
  only the hole can differ from the ground truth but the valid pixels still count in the mean.
  PSNR is ``skimage peak_signal_noise_ratio(gt, comp, data_range=1)`` on float32 [0, 1]; SSIM is
  ``skimage structural_similarity(gt, comp, multichannel=True)`` with its defaults (scikit-image 0.17.2:
  7x7 uniform window, sample covariance, and, for float32 input without data_range, data_range 2 from
  the dtype range (-1, 1)). Each video scores the mean of its per-frame values; the printed figure is
  the mean of the per-video means. Those whole-frame conventions are not these metrics.
- Its only masked formulas are temporal (``pcons_psnr_mask``: a patch centred on the hole's centroid;
  ``warp_error_mask``: flow vectors that start or end in the hole).

The region metrics here are therefore triptych's own, stated exactly (region R = the hole, mask > 0, or
its complement):

- ``psnr_region``: the frames as E2FGVI scores them (float64 on the [0, 255] scale, no rounding or
  clipping); ``mse = mean((pred - gt)^2)`` over the pixels of R and all 3 channels (|R| x 3 values),
  ``10 log10(255^2 / mse)``; inf when mse = 0. One value per frame; a dataset figure is the pooled
  mean of per-frame values (not PSNR of the pooled MSE). Computed on a composited prediction it is
  independent of the valid pixels, unlike the whole-frame PSNR.
- ``ssim_region``: the SSIM *map* of ``ssim:win65`` (E2FGVI: uniform 65x65 window, sample covariance,
  K1 0.01, K2 0.03, data_range 255, per channel, reflect padding), averaged over the 3 channels, then
  averaged over the pixels of R that lie inside win65's cropped interior (32 px from every edge), so
  that an all-hole mask gives exactly ``ssim:win65``. The window still sees pixels outside R: SSIM of
  the hole measures the hole's structure against its surroundings, as a windowed metric must.
A region with no pixel (an empty hole, or an all-hole mask for ``valid``; for SSIM, no pixel of R in the
interior) is an error, never a silent nan or inf.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

from triptych.errors import InputError
from triptych.metrics.convert import to_float64_255
from triptych.metrics.psnr import psnr_from_mse

REGIONS = ("hole", "valid")
_WIN = 65
_CROP = (_WIN - 1) // 2


def region_of(mask: np.ndarray, region: str) -> np.ndarray:
    """bool (H, W): the hole (mask > 0) or its complement."""
    if region not in REGIONS:
        raise InputError(f"unknown region {region!r}", fix=f"use one of: {', '.join(REGIONS)}")
    hole = np.asarray(mask) > 0
    if hole.ndim != 2:
        raise InputError(f"mask has shape {hole.shape}, expected (H, W)", fix="pass a single-channel mask")
    return hole if region == "hole" else ~hole


def _check(pred: np.ndarray, gt: np.ndarray, sel: np.ndarray, region: str, what: str) -> None:
    if sel.shape != gt.shape[:2] or pred.shape[:2] != gt.shape[:2]:
        raise InputError(f"mask is {sel.shape[1]}x{sel.shape[0]} but the frames are {gt.shape[1]}x{gt.shape[0]} (WxH)",
                         fix="give one mask per frame at the frames' resolution")
    if not sel.any():
        raise InputError(f"the {region} region is empty{what}, so {region}-only metrics are undefined",
                         fix="drop this frame, or score it with the whole-frame metric")


def psnr_region(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, region: str = "hole") -> float:
    """PSNR over the pixels of one region (see the module docstring): float64 on [0, 255], mse over
    |R| x 3 values, ``10 log10(255^2 / mse)``, inf when mse = 0.

    >>> gt = np.zeros((2, 2, 3), np.uint8); pred = gt.copy(); pred[0, 0] = 10
    >>> mask = np.array([[255, 0], [0, 0]], np.uint8)
    >>> round(psnr_region(pred, gt, mask), 4)  # mse over the one hole pixel = 100
    28.1308
    >>> psnr_region(pred, gt, mask, "valid")
    inf
    """
    sel = region_of(mask, region)
    _check(pred, gt, sel, region, "")
    diff = to_float64_255(pred)[sel] - to_float64_255(gt)[sel]
    return psnr_from_mse(float(np.mean(np.square(diff))), 255.0)


def ssim_region(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, region: str = "hole") -> float:
    """The channel-mean SSIM map of ``ssim:win65`` averaged over the pixels of one region inside the
    32-px-cropped interior (see the module docstring); an all-hole mask gives ``ssim:win65`` exactly."""
    sel = region_of(mask, region)
    _check(pred, gt, sel, region, "")
    _, smap = structural_similarity(to_float64_255(gt), to_float64_255(pred), data_range=255.0,
                                    channel_axis=-1, win_size=_WIN, full=True)
    inner = np.zeros_like(sel)
    inner[_CROP:-_CROP, _CROP:-_CROP] = True
    keep = sel & inner
    _check(pred, gt, keep, region, f" inside the {_CROP}-px border that SSIM (win 65) crops")
    value = float(smap.mean(axis=-1)[keep].mean(dtype=np.float64))
    if math.isnan(value):
        raise InputError("SSIM of the region is NaN", fix="check the frames for NaN values")
    return value
