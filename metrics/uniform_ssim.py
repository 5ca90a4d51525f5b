"""scikit-image's uniform-window SSIM over the windows lying wholly inside the frame, from window sums.

``skimage.metrics.structural_similarity(im1, im2, win_size=w, data_range=L, channel_axis=-1)`` filters the
whole frame with a w x w uniform filter (reflect padding), forms the SSIM map with the sample covariance
(w^2 / (w^2 - 1)), K1 = 0.01 and K2 = 0.03, then averages the map after cropping (w - 1) / 2 px on every
side, and averages the channels. Only the windows wholly inside the frame reach that mean, so this module
computes just those, from OpenCV's unnormalised box filter (O(1) per window for any w), with the map written
in the window sums S (mu = S / w^2) multiplied through by w^4:

    SSIM = (2 Sx Sy + C1 w^4) (2 n (w^2 Sxy - Sx Sy) + C2 w^4) / ((Sx^2 + Sy^2 + C1 w^4) (n (w^2 Sqq - Sx^2 - Sy^2) + C2 w^4))

with Sqq the sum of x^2 + y^2 and n = w^2 / (w^2 - 1). For uint8 frames every sum and every product above
is an integer below 2^53 (w = 65: Sx <= 1.08e6, w^2 Sxy <= 1.2e12), exact in float64, so both covariance
terms are exact; float frames are summed in float64. Only numpy and OpenCV: no torch import, so a scoring
process starts fast.
"""

from __future__ import annotations

import cv2
import numpy as np

from triptych.errors import InputError

K1, K2 = 0.01, 0.03


def _window_sums(x: np.ndarray, y: np.ndarray, win: int) -> tuple[np.ndarray, ...]:
    """Sums of x, y, x^2 + y^2 and x y over every ``win`` x ``win`` window inside (H, W, C) frames:
    (H - win + 1, W - win + 1, C) float64 each.

    OpenCV's unnormalised box filter (running sums, O(1) per pixel) gives the sum of the window centred on
    every pixel; those reaching past the frame (which see reflected pixels) are cut off. For uint8 frames
    every sum is an integer below 2^53, so exact in float64 (x^2 + y^2 is summed from int32, x y, at most
    255^2 = 65025, from uint16); float64 frames are summed in float64."""
    r = win // 2
    inside = (slice(r, x.shape[0] - r), slice(r, x.shape[1] - r))

    def box(plane: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(plane, cv2.CV_64F, (win, win), normalize=False, borderType=cv2.BORDER_REFLECT)

    if x.dtype == np.uint8:
        squares = cv2.add(cv2.multiply(x, x, dtype=cv2.CV_32S), cv2.multiply(y, y, dtype=cv2.CV_32S))
        sums = (box(x), box(y), box(squares), box(cv2.multiply(x, y, dtype=cv2.CV_16U)))
    else:
        sums = (box(x), box(y), box(x * x + y * y), box(x * y))
    return tuple(np.ascontiguousarray(window_sum[inside]) for window_sum in sums)


def uniform_ssim_valid(x: np.ndarray, y: np.ndarray, win: int, data_range: float) -> float:
    """SSIM of (H, W, C) frames ``x`` (the ground truth, skimage's im1) and ``y``: both uint8 (exact integer
    sums) or both float64 on the scale of ``data_range`` (module docstring)."""
    if min(x.shape[:2]) < win:
        raise InputError(f"frame is {x.shape[1]}x{x.shape[0]}, smaller than this SSIM's {win}x{win} window",
                         fix=f"score frames of at least {win}x{win} pixels, or choose a variant with a smaller "
                             "window ('triptych list metrics')")
    sx, sy, sqq, sxy = _window_sums(x, y, win)
    area = float(win * win)
    cov_norm = area / (area - 1.0)  # sample covariance
    c1, c2 = (K1 * data_range * area) ** 2, (K2 * data_range * area) ** 2
    product = sx * sy
    squares = np.square(sx)
    squares += np.square(sy)
    covariance = np.multiply(sxy, area)  # 2 n (w^2 Sxy - Sx Sy) + C2 w^4, the difference exact
    covariance -= product
    covariance *= 2 * cov_norm
    covariance += c2
    variances = np.multiply(sqq, area)  # n (w^2 Sqq - Sx^2 - Sy^2) + C2 w^4
    variances -= squares
    variances *= cov_norm
    variances += c2
    product *= 2
    product += c1
    product *= covariance
    squares += c1
    squares *= variances
    product /= squares
    return float(product.mean())  # = the mean of the channels' means: every channel has as many windows
