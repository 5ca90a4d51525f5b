"""SSIM as the reference repositories compute it: named variants that give very different numbers.

- ``win65`` (E2FGVI, via scikit-image 0.16 ``compare_ssim``): uniform 65x65 window, sample covariance,
  per-channel SSIM averaged over R, G, B, a 32-px border cropped before the mean.
- ``matlab3d`` (AMT / RIFE / CAIN "ssim_matlab"): one 11x11x11 Gaussian window over colour x H x W.
- ``skimage7`` (EMA-VFI / VFIMamba on Xiph): scikit-image's defaults, a uniform 7x7 window per channel,
  on the prediction rounded to uint8.
- ``devil`` (DEVIL's whole-frame SSIM): the same 7x7 window on [0, 1] frames with scikit-image 0.17.2's
  implicit float data range of 2.
"""

from __future__ import annotations

import cv2
import numpy as np

from triptych.errors import InputError
from triptych.metrics.convert import to_float64_255, to_unit_float32
from triptych.metrics.psnr import quantize_uint8
from triptych.metrics.uniform_ssim import uniform_ssim_valid


def ssim_win65(pred: np.ndarray, gt: np.ndarray) -> float:
    """E2FGVI ``calc_psnr_and_ssim``: ``compare_ssim(gt, comp, data_range=255, multichannel=True,
    win_size=65)`` on float64 frames in [0, 255] (E2FGVI @ 709cbe3, scikit-image 0.16.2): uniform 65x65
    window, sample covariance (4225/4224), K1 0.01, K2 0.03, the map's mean after cropping
    (65 - 1) / 2 = 32 px on every side, then the mean over the channels (``uniform_ssim.uniform_ssim_valid``:
    exact integer window sums for uint8 frames).
    Equal to ``structural_similarity(..., channel_axis=-1, win_size=65, data_range=255)`` within 1e-12
    here (tested; ``tests/perf`` measures the speed against it).
    """
    if gt.dtype == np.uint8 and pred.dtype == np.uint8:
        return uniform_ssim_valid(gt, pred, 65, 255.0)
    return uniform_ssim_valid(to_float64_255(gt), to_float64_255(pred), 65, 255.0)


def ssim_devil(pred: np.ndarray, gt: np.ndarray) -> float:
    """DEVIL's whole-frame SSIM (Szeto and Corso; MichiganCOG/video-inpainting-evaluation @ d339a12
    ``src/compute_metrics/ssim_computer.py``): ``structural_similarity(gt, comp, multichannel=True)`` with
    scikit-image 0.17.2 (its pinned version) on float32 frames in [0, 1] (``pil_rgb_to_numpy``: uint8 / 255),
    no ``data_range``. For float input 0.17.2 takes the range of the dtype, ``dtype_range[float32] =
    (-1, 1)``, so **data_range = 2** (C1 = 0.02^2, C2 = 0.06^2, four times the constants of [0, 1] data),
    and casts to float64: uniform 7x7 window, sample covariance (49/48), K1 0.01, K2 0.03, 3-px border
    cropped, mean over R, G, B. So it is not ``skimage7`` (data range 1 on the same scale) and scores
    higher. ``comp`` is DEVIL's composite (ground truth outside the hole): pass composited predictions,
    as ``triptych inpaint`` writes and the inpainting benchmarks score. DEVIL's figure is the mean over
    videos of each video's mean over frames (not the pooled frame mean).

    Recent scikit-image refuses float input without ``data_range``; the equivalent call is
    ``structural_similarity(gt.astype(float64), comp.astype(float64), channel_axis=-1, data_range=2)``
    (tested within 1e-12).

    >>> gt = np.zeros((7, 7, 3), np.uint8); pred = np.full((7, 7, 3), 51, np.uint8)  # 0 vs 0.2
    >>> round(ssim_devil(pred, gt) * 101, 6)  # (C1) / (0.2^2 + C1) with C1 = 0.02^2: 1/101
    1.0
    """
    x, y = (to_unit_float32(f).astype(np.float64) for f in (gt, pred))
    return uniform_ssim_valid(x, y, 7, 2.0)


def ssim_skimage7(pred: np.ndarray, gt: np.ndarray) -> float:
    """EMA-VFI @ a42a2b8 / VFIMamba @ 9e6afab ``benchmark/Xiph.py``: the prediction clamped and rounded to
    uint8 (``psnr.quantize_uint8``), then ``structural_similarity(im1=gt, im2=pred, data_range=255,
    multichannel=True)``. ``multichannel=True`` is the old spelling of ``channel_axis=-1`` (deprecated in
    scikit-image 0.19; 0.26 ignores it and then refuses the 3-wide channel axis as too small for the
    window), so this is scikit-image's default SSIM per channel: uniform 7x7 window, sample covariance (49/48), K1 0.01, K2 0.03, the map's mean after
    cropping (7 - 1) / 2 = 3 px on every side, then the mean over the channels. The reference reads BGR
    with cv2; the per-channel mean does not depend on the channel order.
    """
    from skimage.metrics import structural_similarity  # imported here: scipy.ndimage is slow to import

    return float(structural_similarity(quantize_uint8(gt), quantize_uint8(pred), data_range=255.0,
                                       channel_axis=-1, win_size=7))


def _gaussian_taps(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """AMT's ``gaussian`` window: ``exp(-(i - size // 2)^2 / (2 sigma^2))`` normalised to sum 1, float32."""
    x = np.arange(size, dtype=np.float32) - np.float32(size // 2)
    g = np.exp(-(x * x) / np.float32(2.0 * sigma * sigma))
    return g / g.sum(dtype=np.float32)


def _colour_mixing(g: np.ndarray, channels: int = 3) -> np.ndarray:
    """The window's colour (depth) axis as a (3, 3) matrix: with replicate padding of ``len(g) // 2``
    on an axis of 3, output channel c is ``sum_k g[k] * x[clamp(c + k - r, 0, 2)]``."""
    r = g.size // 2
    mixing = np.zeros((channels, channels), np.float64)
    for c in range(channels):
        for k, tap in enumerate(g):
            mixing[c, min(max(c + k - r, 0), channels - 1)] += tap
    return mixing.astype(np.float32)


def _blur3d(planes: np.ndarray, g: np.ndarray, mixing: np.ndarray) -> np.ndarray:
    """The separable 11x11x11 Gaussian of an (H, W, 3) float32 volume (colour x H x W), replicate-padded
    by 5 on all three axes: the colour axis as a matrix (``_colour_mixing``), then H and W with OpenCV's
    separable filter (replicate border). Same shape as the input."""
    return cv2.sepFilter2D(cv2.transform(planes, mixing), cv2.CV_32F, g, g, borderType=cv2.BORDER_REPLICATE)


def ssim_matlab3d(pred: np.ndarray, gt: np.ndarray) -> float:
    """AMT ``metrics/psnr_ssim.py: calculate_ssim`` (the "ssim_matlab" of RIFE/CAIN): float32 in [0, 1],
    prediction clamped to [0, 1]; the RGB axis is a depth axis of a 3-D Gaussian window (size 11,
    sigma 1.5) with 5-px replicate padding on colour, H and W; sigma via E[x^2] - mu^2; L = 1 (the
    reference infers L from the prediction, which is 1 for inputs in [0, 1]); C1 = (0.01 L)^2,
    C2 = (0.03 L)^2; the mean over the full map. (AMT @ 70f988f; docs/protocols/frame_interpolation.md.)

    The window is separable, so it is applied axis by axis (``_blur3d``) instead of AMT's 11x11x11
    ``conv3d``: the same numbers within float32 rounding (tests/metrics/test_metric_fixtures.py, 1e-5), and
    var_x + var_y, the only way the variances enter, takes one blur of x^2 + y^2.
    """
    x = np.clip(to_unit_float32(pred), 0.0, 1.0)
    y = to_unit_float32(gt)
    if x.ndim != 3 or x.shape[2] != 3:
        raise InputError(f"frame of shape {x.shape}: ssim:matlab3d needs (H, W, 3) RGB frames",
                         fix="pass RGB frames")
    g = _gaussian_taps()
    mixing = _colour_mixing(g)
    c1, c2 = np.float32(0.01**2), np.float32(0.03**2)
    mu_x, mu_y = _blur3d(x, g, mixing), _blur3d(y, g, mixing)
    squares = _blur3d(x * x + y * y, g, mixing)
    cross = _blur3d(x * y, g, mixing)
    mu_xy = mu_x * mu_y
    mu_sq = mu_x * mu_x + mu_y * mu_y
    ssim_map = ((2 * mu_xy + c1) * (2 * (cross - mu_xy) + c2)) / ((mu_sq + c1) * (squares - mu_sq + c2))
    # numpy's pairwise sum does not depend on the thread count, so any executor gives the same bits
    return float(ssim_map.astype(np.float64).mean())
