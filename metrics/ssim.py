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

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from triptych.errors import InputError
from triptych.metrics.convert import to_float64_255, to_unit_float32
from triptych.metrics.psnr import quantize_uint8


def _running_sums_last(planes: torch.Tensor, win: int) -> torch.Tensor:
    """Sums of ``win`` consecutive values along the last axis (valid positions only), from one cumsum
    over the planes with a zero column in front."""
    c = torch.cumsum(F.pad(planes, (1, 0)), dim=-1)
    return c[..., win:] - c[..., :-win]


def _box_sums_valid(planes: torch.Tensor, win: int) -> torch.Tensor:
    """Sums over every ``win`` x ``win`` window lying wholly inside (..., H, W) planes, by running sums along W,
    then along H of the transposed result: (..., W - win + 1, H - win + 1), i.e. transposed (the SSIM map is
    only averaged, so its orientation does not matter). O(1) per output for any window size."""
    rows = _running_sums_last(planes, win).transpose(-1, -2).contiguous()
    return _running_sums_last(rows, win)


def _uniform_ssim_valid(x: torch.Tensor, y: torch.Tensor, win: int, data_range: float) -> float:
    """scikit-image's SSIM with a uniform ``win`` x ``win`` window, sample covariance, K1 0.01, K2 0.03,
    per channel of (3, H, W) frames (``x`` the ground truth, skimage's im1), the map's mean after cropping
    (win - 1) / 2 px on every side, then the mean over the channels. scikit-image filters the whole frame
    (reflect padding) and then drops that border, so only windows wholly inside the frame reach the mean:
    this computes just those, with running sums, for the three channels at once. Integer frames (uint8
    levels) are summed exactly in integers; float frames in float64."""
    if min(x.shape[-2:]) < win:
        raise InputError(f"frame is {x.shape[-1]}x{x.shape[-2]}, smaller than this SSIM's {win}x{win} window",
                         fix=f"score frames of at least {win}x{win} pixels, or choose a variant with a smaller "
                             "window ('triptych list metrics')")
    # vx + vy only appear as a sum, so four box sums suffice: x, y, x^2 + y^2, xy
    sums = _box_sums_valid(torch.stack([x, y, x * x + y * y, x * y]), win)
    ux, uy, usq, uxy = sums.to(torch.float64) / (win * win)
    cov_norm = win * win / (win * win - 1.0)  # sample covariance
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mean_sq = ux * ux + uy * uy
    ssim_map = ((2 * ux * uy + c1) * (2 * cov_norm * (uxy - ux * uy) + c2)) / (
        (mean_sq + c1) * (cov_norm * (usq - mean_sq) + c2))
    return float(np.mean([channel.mean().item() for channel in ssim_map]))


def _channels_first(image: np.ndarray, win: int) -> torch.Tensor:
    """A (H, W, 3) uint8 frame as exact integer levels (int32 while every running sum of x^2 + y^2 fits:
    2 * 255^2 * win * H < 2^31, e.g. H < 254 for win 65; int64 above), any other frame as float64 levels in
    [0, 255]."""
    if image.dtype == np.uint8:
        dtype = torch.int32 if 2 * 255**2 * win * image.shape[0] < 2**31 else torch.int64
        return torch.from_numpy(image).permute(2, 0, 1).to(dtype)
    return torch.from_numpy(to_float64_255(image)).permute(2, 0, 1).contiguous()


def ssim_win65(pred: np.ndarray, gt: np.ndarray) -> float:
    """E2FGVI ``calc_psnr_and_ssim``: ``compare_ssim(gt, comp, data_range=255, multichannel=True,
    win_size=65)`` on float64 frames in [0, 255] (E2FGVI @ 709cbe3, scikit-image 0.16.2): uniform 65x65
    window, sample covariance (4225/4224), K1 0.01, K2 0.03, the map's mean after cropping
    (65 - 1) / 2 = 32 px on every side, then the mean over the channels (``_uniform_ssim_valid``).
    Equal to ``structural_similarity(..., channel_axis=-1, win_size=65, data_range=255)`` within 1e-12
    here (tested; ``tests/perf`` measures the speed against it).
    """
    x, y = _channels_first(gt, 65), _channels_first(pred, 65)
    if x.dtype != y.dtype:  # one uint8 frame, one float: both as float64 levels
        x, y = x.to(torch.float64), y.to(torch.float64)
    return _uniform_ssim_valid(x, y, 65, 255.0)


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
    x, y = (torch.from_numpy(to_unit_float32(f).astype(np.float64)).permute(2, 0, 1).contiguous() for f in (gt, pred))
    return _uniform_ssim_valid(x, y, 7, 2.0)


def ssim_skimage7(pred: np.ndarray, gt: np.ndarray) -> float:
    """EMA-VFI @ a42a2b8 / VFIMamba @ 9e6afab ``benchmark/Xiph.py``: the prediction clamped and rounded to
    uint8 (``psnr.quantize_uint8``), then ``structural_similarity(im1=gt, im2=pred, data_range=255,
    multichannel=True)``. ``multichannel=True`` is the old spelling of ``channel_axis=-1`` (deprecated in
    scikit-image 0.19; 0.26 ignores it and then refuses the 3-wide channel axis as too small for the
    window), so this is scikit-image's default SSIM per channel: uniform 7x7 window, sample covariance (49/48), K1 0.01, K2 0.03, the map's mean after
    cropping (7 - 1) / 2 = 3 px on every side, then the mean over the channels. The reference reads BGR
    with cv2; the per-channel mean does not depend on the channel order.
    """
    return float(structural_similarity(quantize_uint8(gt), quantize_uint8(pred), data_range=255.0,
                                       channel_axis=-1, win_size=7))


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _blur3d(volume: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 11x11x11 Gaussian over (depth=colour, H, W) of a [N, 1, 3, H, W] volume, replicate-padded
    by 5 on all three axes, so the output has the input's shape."""
    r = g.numel() // 2
    out = F.pad(volume, (r, r, r, r, r, r), mode="replicate")
    out = F.conv3d(out, g.view(1, 1, -1, 1, 1))
    out = F.conv3d(out, g.view(1, 1, 1, -1, 1))
    return F.conv3d(out, g.view(1, 1, 1, 1, -1))


def ssim_matlab3d(pred: np.ndarray, gt: np.ndarray) -> float:
    """AMT ``metrics/psnr_ssim.py: calculate_ssim`` (the "ssim_matlab" of RIFE/CAIN): float32 in [0, 1],
    prediction clamped to [0, 1]; the RGB axis is a depth axis of a 3-D Gaussian window (size 11,
    sigma 1.5) with 5-px replicate padding on colour, H and W; sigma via E[x^2] - mu^2; L = 1 (the
    reference infers L from the prediction, which is 1 for inputs in [0, 1]); C1 = (0.01 L)^2,
    C2 = (0.03 L)^2; the mean over the full map. (AMT @ 70f988f; docs/protocols/frame_interpolation.md.)
    """
    x = torch.from_numpy(np.clip(to_unit_float32(pred), 0.0, 1.0)).permute(2, 0, 1)[None, None]
    y = torch.from_numpy(to_unit_float32(gt)).permute(2, 0, 1)[None, None]
    g = _gaussian_1d()
    c1, c2 = 0.01**2, 0.03**2
    with torch.no_grad():
        mu_x, mu_y = _blur3d(x, g), _blur3d(y, g)
        var_x = _blur3d(x * x, g) - mu_x * mu_x
        var_y = _blur3d(y * y, g) - mu_y * mu_y
        cov = _blur3d(x * y, g) - mu_x * mu_y
        ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    # numpy's pairwise sum does not depend on the thread count, so any executor gives the same bits
    return float(ssim_map.numpy().astype(np.float64).mean())
