"""SSIM as the reference repositories compute it: named variants that give very different numbers.

- ``win65`` (E2FGVI, via scikit-image 0.16 ``compare_ssim``): uniform 65x65 window, sample covariance,
  per-channel SSIM averaged over R, G, B, a 32-px border cropped before the mean.
- ``matlab3d`` (AMT / RIFE / CAIN "ssim_matlab"): one 11x11x11 Gaussian window over colour x H x W.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from triptych.metrics.convert import to_float64_255, to_unit_float32


def ssim_win65(pred: np.ndarray, gt: np.ndarray) -> float:
    """E2FGVI ``calc_psnr_and_ssim``: ``compare_ssim(gt, comp, data_range=255, multichannel=True,
    win_size=65)`` on float64 frames in [0, 255] (E2FGVI @ 709cbe3, scikit-image 0.16.2). The modern
    equivalent, used here, is ``structural_similarity(..., channel_axis=-1, win_size=65,
    data_range=255)``: uniform window, sample covariance (4225/4224), K1 0.01, K2 0.03, the mean over
    the map after cropping (65 - 1) / 2 = 32 px on every side, then over the channels.
    """
    return float(structural_similarity(to_float64_255(gt), to_float64_255(pred), data_range=255.0,
                                       channel_axis=-1, win_size=65))


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
    C2 = (0.03 L)^2; the mean over the full map. (AMT @ 70f988f; protocols.md section 2.)
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
