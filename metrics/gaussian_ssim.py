"""Gaussian-window SSIM and MS-SSIM as VFIBenchmark reports them (the ``pytorch_msssim`` package).

VFIBenchmark (PerVFI's evaluation, mulns/VFIBenchmark @ 40a05ec ``metrics/__init__.py``) scores
``basicMetric.calc_ssim`` = ``pytorch_msssim.ssim(pred, gt, data_range=1.0)`` and ``calc_msssim`` =
``pytorch_msssim.ms_ssim(pred, gt, data_range=1.0)`` on PNGs read back as ``uint8 / 255`` float32; a float
prediction is first written with ``to_pil_image``, i.e. truncated to the level below
(``triptych.metrics.ie.pil_levels``). The arithmetic is that of pytorch_msssim 1.0 ``ssim.py``:

- window: an 11-tap Gaussian, sigma 1.5, ``exp(-(i - 5)^2 / (2 sigma^2))`` normalised to sum 1, applied
  separably along H then W per channel, with no padding (only the windows inside the frame);
- ``SSIM map = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) * cs``, ``cs = (2 s_xy + C2) / (s_x^2 + s_y^2 + C2)``
  with ``C1 = 0.01^2``, ``C2 = 0.03^2`` (data range 1) and the biased (Gaussian-weighted) variances;
- ``ssim``: each channel's map mean, then the mean over R, G, B (``ssim_per_channel.mean(1)``);
- ``ms_ssim`` (the 5-scale MS-SSIM of Wang, Simoncelli and Bovik, Asilomar 2003, with their exponents
  0.0448, 0.2856, 0.3001, 0.2363, 0.1333): at scales 1..4 the channel's mean ``cs`` (negatives set to 0),
  then a 2x2 average pool (zero padding of 1 on an odd side, counted in the mean); at scale 5 the
  channel's mean SSIM (negatives set to 0); ``prod(cs_i^w_i) * ssim_5^w_5`` per channel, mean over
  channels. The smaller side must exceed (11 - 1) x 2^4 = 160 pixels, as pytorch_msssim asserts.

These differ from ``ssim:matlab3d`` (one 11x11x11 window over colour too, replicate padding) by 0.1 to 0.4
on the same frames; the computation here is float32, as the reference's.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from triptych.errors import InputError
from triptych.metrics.ie import pil_levels

WIN_SIZE = 11
WIN_SIGMA = 1.5
K1, K2 = 0.01, 0.03
MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang, Simoncelli and Bovik 2003


@functools.lru_cache(maxsize=1)
def gaussian_window() -> torch.Tensor:
    """The 1-D Gaussian of pytorch_msssim ``_fspecial_gauss_1d(11, 1.5)``, float32, as a (3, 1, 1, 11) kernel."""
    coords = torch.arange(WIN_SIZE, dtype=torch.float32) - WIN_SIZE // 2
    g = torch.exp(-(coords ** 2) / (2 * WIN_SIGMA ** 2))
    return (g / g.sum()).view(1, 1, 1, WIN_SIZE).repeat(3, 1, 1, 1)


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Separable valid Gaussian filtering of (1, 3, H, W) planes: along H, then along W."""
    win = gaussian_window()
    out = F.conv2d(x, win.transpose(2, 3), groups=3)
    return F.conv2d(out, win, groups=3)


def ssim_and_cs(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per channel (3,), the mean SSIM map and the mean contrast-structure map of two (1, 3, H, W) frames."""
    c1, c2 = K1 ** 2, K2 ** 2
    mu_x, mu_y = _blur(x), _blur(y)
    mu_xx, mu_yy, mu_xy = mu_x.pow(2), mu_y.pow(2), mu_x * mu_y
    s_xx, s_yy, s_xy = _blur(x * x) - mu_xx, _blur(y * y) - mu_yy, _blur(x * y) - mu_xy
    cs_map = (2 * s_xy + c2) / (s_xx + s_yy + c2)
    ssim_map = (2 * mu_xy + c1) / (mu_xx + mu_yy + c1) * cs_map
    return ssim_map.flatten(2).mean(-1)[0], cs_map.flatten(2).mean(-1)[0]


def to_vfibench_tensor(image: np.ndarray, name: str) -> torch.Tensor:
    """A frame as VFIBenchmark reads its PNG: ``pil_levels`` (float truncated to uint8), / 255, float32."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"{name}: shape {image.shape}, expected (H, W, 3) RGB", fix="pass RGB frames")
    levels = pil_levels(image).astype(np.float32) / np.float32(255.0)
    return torch.from_numpy(np.ascontiguousarray(levels.transpose(2, 0, 1)))[None]


def _frames(pred: np.ndarray, gt: np.ndarray, min_side: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = gt.shape[:2]
    if min(h, w) < min_side:
        raise InputError(f"frame is {w}x{h}: {what} needs a smaller side of at least {min_side} pixels",
                         fix="score larger frames, or choose another SSIM variant ('triptych list metrics')")
    return to_vfibench_tensor(pred, "prediction"), to_vfibench_tensor(gt, "ground truth")


def ssim_pytorch_msssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """Metric ``ssim``, variant ``pytorch_msssim``: VFIBenchmark's SSIM (module docstring).

    >>> flat = np.full((16, 16, 3), 128, np.uint8)
    >>> ssim_pytorch_msssim(flat, flat)
    1.0
    """
    x, y = _frames(pred, gt, WIN_SIZE, "the 11x11 Gaussian SSIM")
    with torch.no_grad():
        ssim, _ = ssim_and_cs(x, y)
    return float(ssim.mean())


def ms_ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """Metric ``ms_ssim``, variant ``pytorch_msssim``: 5-scale MS-SSIM as VFIBenchmark reports it."""
    x, y = _frames(pred, gt, (WIN_SIZE - 1) * 2 ** 4 + 1, "5-scale MS-SSIM")
    factors = []
    with torch.no_grad():
        for level, weight in enumerate(MS_WEIGHTS):
            ssim, cs = ssim_and_cs(x, y)
            if level < len(MS_WEIGHTS) - 1:
                factors.append(torch.relu(cs) ** weight)
                padding = [s % 2 for s in x.shape[2:]]
                x, y = F.avg_pool2d(x, 2, padding=padding), F.avg_pool2d(y, 2, padding=padding)
        factors.append(torch.relu(ssim) ** MS_WEIGHTS[-1])
        return float(torch.stack(factors).prod(dim=0).mean())
