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


# Windows whose uint8 sums all fit int32: x^2 + y^2 summed over win^2 pixels is at most 2 * 255^2 * win^2.
INT32_WINDOW_MAX = 128
ROWS_PER_BLOCK = 64  # the map is formed this many rows at a time, so its temporaries stay in the CPU's cache


def _window_sums(x: np.ndarray, y: np.ndarray, win: int) -> tuple[np.ndarray, ...]:
    """Sums of x, y, x^2 + y^2 and x y over every ``win`` x ``win`` window inside (H, W, C) frames:
    (H - win + 1, W - win + 1, C) views each.

    OpenCV's unnormalised box filter (running sums, O(1) per pixel) gives the sum of the window centred on
    every pixel; those reaching past the frame (which see reflected pixels) are cut off. For uint8 frames
    (``win`` <= ``INT32_WINDOW_MAX``) every sum is an integer that fits int32, so they are kept as int32
    (half the memory traffic of float64) and exact; float64 frames are summed in float64."""
    r = win // 2
    inside = (slice(r, x.shape[0] - r), slice(r, x.shape[1] - r))
    exact_int32 = x.dtype == np.uint8 and win <= INT32_WINDOW_MAX
    depth = cv2.CV_32S if exact_int32 else cv2.CV_64F

    def box(plane: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(plane, depth, (win, win), normalize=False, borderType=cv2.BORDER_REFLECT)[inside]

    if x.dtype == np.uint8:
        squares = cv2.add(cv2.multiply(x, x, dtype=cv2.CV_32S), cv2.multiply(y, y, dtype=cv2.CV_32S))
        return box(x), box(y), box(squares), box(cv2.multiply(x, y, dtype=cv2.CV_16U))
    return box(x), box(y), box(x * x + y * y), box(x * y)


def uniform_ssim_valid(x: np.ndarray, y: np.ndarray, win: int, data_range: float) -> float:
    """SSIM of (H, W, C) frames ``x`` (the ground truth, skimage's im1) and ``y``: both uint8 (exact integer
    sums) or both float64 on the scale of ``data_range`` (module docstring). The map is formed in float64
    ``ROWS_PER_BLOCK`` rows at a time and its row sums accumulated, then divided by the number of windows."""
    if min(x.shape[:2]) < win:
        raise InputError(f"frame is {x.shape[1]}x{x.shape[0]}, smaller than this SSIM's {win}x{win} window",
                         fix=f"score frames of at least {win}x{win} pixels, or choose a variant with a smaller "
                             "window ('triptych list metrics')")
    sx, sy, sqq, sxy = _window_sums(x, y, win)
    area = float(win * win)
    cov_norm = area / (area - 1.0)  # sample covariance
    c1, c2 = (K1 * data_range * area) ** 2, (K2 * data_range * area) ** 2
    block = (min(ROWS_PER_BLOCK, sx.shape[0]), *sx.shape[1:])
    product, squares, covariance, variances = (np.empty(block) for _ in range(4))
    row_sums = np.zeros(sx.shape[1:])
    for start in range(0, sx.shape[0], ROWS_PER_BLOCK):
        rows = slice(start, min(start + ROWS_PER_BLOCK, sx.shape[0]))
        n = rows.stop - start
        p, q, cov, var = product[:n], squares[:n], covariance[:n], variances[:n]
        np.multiply(sx[rows], sy[rows], out=p, dtype=np.float64)
        np.square(sx[rows], out=q, dtype=np.float64)
        np.square(sy[rows], out=var, dtype=np.float64)
        q += var
        np.multiply(sxy[rows], area, out=cov, dtype=np.float64)  # 2 n (w^2 Sxy - Sx Sy) + C2 w^4, exact difference
        cov -= p
        cov *= 2 * cov_norm
        cov += c2
        np.multiply(sqq[rows], area, out=var, dtype=np.float64)  # n (w^2 Sqq - Sx^2 - Sy^2) + C2 w^4
        var -= q
        var *= cov_norm
        var += c2
        p *= 2
        p += c1
        p *= cov
        q += c1
        q *= var
        p /= q
        row_sums += p.sum(axis=0)
    # = the mean of the channels' means: every channel has as many windows
    return float(row_sums.sum() / sx.size)
