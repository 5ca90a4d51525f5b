"""Interpolation error (IE), as AMT computes it: one named variant.

AMT @ 70f988f ``metrics/psnr_ssim.py: calculate_ie(a, b) = mean(|round(a * 255) - round(b * 255)|)`` with
``torch.round`` (half to even) on float32 tensors in [0, 1]. The benchmark scripts never call it; it is
the IE of AMT's code, not Middlebury's (which is an RMS error) nor VFIBenchmark's.
"""

from __future__ import annotations

import numpy as np

from triptych.metrics.convert import to_unit_float32


def _levels(image: np.ndarray) -> np.ndarray:
    """float32 [0, 1] -> the 0..255 level AMT compares: ``round(x * 255)`` in float32, half to even
    (``np.rint`` rounds as ``torch.round`` does; the product is float32 in both)."""
    return np.rint(image * np.float32(255.0))


def ie_amt(pred: np.ndarray, gt: np.ndarray) -> float:
    """AMT ``calculate_ie(pred, gt)``: both converted as ``img2tensor`` does (uint8 / 255 in float32), the
    prediction clamped to [0, 1] as AMT's model output is, each scaled by 255 and rounded half to even,
    then the mean absolute difference over every pixel and channel (lower is better; 0 for identical
    frames). The rounded levels are exact integers, so their difference is exact; the mean is
    accumulated in float64 where the reference uses float32 (< 2e-6 apart on the fixtures).

    >>> gt = np.zeros((2, 2, 3), np.uint8); pred = gt.copy(); pred[0, 0, 0] = 12
    >>> ie_amt(pred, gt)
    1.0
    """
    p = np.clip(to_unit_float32(pred), 0.0, 1.0)
    diff = np.abs(_levels(p) - _levels(to_unit_float32(gt)))
    return float(np.mean(diff, dtype=np.float64))
