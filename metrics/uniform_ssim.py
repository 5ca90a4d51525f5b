"""scikit-image's uniform-window SSIM over the windows lying wholly inside the frame, from integral images.

``skimage.metrics.structural_similarity(im1, im2, win_size=w, data_range=L, channel_axis=-1)`` filters the
whole frame with a w x w uniform filter (reflect padding), forms the SSIM map with the sample covariance
(w^2 / (w^2 - 1)), K1 = 0.01 and K2 = 0.03, then averages the map after cropping (w - 1) / 2 px on every
side, and averages the channels. Only the windows wholly inside the frame reach that mean, so this module
computes just those, from OpenCV's unnormalised box filter (O(1) per window for any w). For uint8 frames
the sums are integers, exact in float64 (every one is below 2^53), so the map equals the one from exact
integer arithmetic; float frames are summed in float64. Only numpy and OpenCV: no torch import, so a scoring process starts fast.
"""

from __future__ import annotations

import cv2
import numpy as np

from triptych.errors import InputError

K1, K2 = 0.01, 0.03


def _window_means(x: np.ndarray, y: np.ndarray, win: int) -> tuple[np.ndarray, ...]:
    """Means of x, y, x^2 + y^2 and x y over every ``win`` x ``win`` window inside (H, W, C) frames:
    (H - win + 1, W - win + 1, C) float64 each.

    OpenCV's unnormalised box filter (running sums, O(1) per pixel) gives the sum of the window centred on
    every pixel; those reaching past the frame (which see reflected pixels) are cut off. For uint8 frames
    every sum is an integer below 2^53, so exact in float64 (the products, at most 255^2 = 65025, fit
    uint16); float64 frames are summed in float64."""
    r = win // 2
    inside = (slice(r, x.shape[0] - r), slice(r, x.shape[1] - r))

    def box(plane: np.ndarray, squares: bool = False) -> np.ndarray:
        window_sum = cv2.sqrBoxFilter if squares else cv2.boxFilter
        return window_sum(plane, cv2.CV_64F, (win, win), normalize=False, borderType=cv2.BORDER_REFLECT)

    if x.dtype == np.uint8:
        sums = (box(x), box(y), box(x, squares=True) + box(y, squares=True), box(x.astype(np.uint16) * y))
    else:
        sums = (box(x), box(y), box(x * x + y * y), box(x * y))
    return tuple(np.divide(window_sum[inside], float(win * win)) for window_sum in sums)


def uniform_ssim_valid(x: np.ndarray, y: np.ndarray, win: int, data_range: float) -> float:
    """SSIM of (H, W, C) frames ``x`` (the ground truth, skimage's im1) and ``y``: both uint8 (exact integer
    sums) or both float64 on the scale of ``data_range`` (module docstring)."""
    if min(x.shape[:2]) < win:
        raise InputError(f"frame is {x.shape[1]}x{x.shape[0]}, smaller than this SSIM's {win}x{win} window",
                         fix=f"score frames of at least {win}x{win} pixels, or choose a variant with a smaller "
                             "window ('triptych list metrics')")
    ux, uy, usq, uxy = _window_means(x, y, win)
    area = float(win * win)
    cov_norm = area / (area - 1.0)  # sample covariance
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    uxuy = ux * uy
    mean_sq = np.square(ux, out=ux)
    mean_sq += np.square(uy, out=uy)
    uxy -= uxuy  # covariance, then the contrast-structure numerator
    uxy *= 2 * cov_norm
    uxy += c2
    usq -= mean_sq  # variances, then the denominator
    usq *= cov_norm
    usq += c2
    uxuy *= 2
    uxuy += c1
    uxuy *= uxy
    mean_sq += c1
    mean_sq *= usq
    uxuy /= mean_sq
    return float(uxuy.mean())  # = the mean of the channels' means: every channel has as many windows
