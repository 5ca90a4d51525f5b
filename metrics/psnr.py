"""PSNR as the reference repositories compute it: three named variants.

Functional core: ``mean_squared_error`` (the sufficient statistic of one sample) and ``psnr_from_mse``;
the variants only differ in how the inputs are converted (see ``convert.py`` and ``quantize_uint8``).
"""

from __future__ import annotations

import math

import numpy as np

from triptych.metrics.convert import to_float64_255, to_unit_float32


def mean_squared_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean of the squared difference over every value (all pixels, all channels), accumulated in float64."""
    diff = pred - gt
    return float(np.mean(np.square(diff, dtype=np.float64)))


def psnr_from_mse(mse: float, peak: float) -> float:
    """``10 log10(peak^2 / mse)``; ``inf`` when the images are identical (mse == 0)."""
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def psnr_e2fgvi(pred: np.ndarray, gt: np.ndarray) -> float:
    """E2FGVI ``core/metrics.py: calculate_psnr``: both frames cast to float64 on the [0, 255] scale, no
    clipping or rounding, ``20 log10(255 / sqrt(mse))`` over the whole frame and all 3 channels; inf if
    mse is 0. (E2FGVI @ 709cbe3; docs/protocols/video_completion.md.)

    >>> gt = np.zeros((2, 2, 3), np.uint8); pred = gt.copy(); pred[0, 0, 0] = 12
    >>> round(psnr_e2fgvi(pred, gt), 4)
    37.339
    """
    return psnr_from_mse(mean_squared_error(to_float64_255(pred), to_float64_255(gt)), 255.0)


def psnr_amt(pred: np.ndarray, gt: np.ndarray) -> float:
    """AMT ``metrics/psnr_ssim.py: calculate_psnr``: float32 in [0, 1] (uint8 / 255), prediction clamped
    to [0, 1] as the model's forward does, NOT rounded to uint8; ``-10 log10(mean((pred - gt)^2))``.
    The difference is taken in float32 as the reference does; its mean is accumulated in float64
    (the two differ by < 2e-6 dB on the fixtures). (AMT @ 70f988f; docs/protocols/frame_interpolation.md.)
    """
    p = np.clip(to_unit_float32(pred), 0.0, 1.0)
    return psnr_from_mse(mean_squared_error(p, to_unit_float32(gt)), 1.0)


def quantize_uint8(image: np.ndarray) -> np.ndarray:
    """A prediction as EMA-VFI / VFIMamba ``benchmark/Xiph.py`` stores it before scoring: uint8 stays as
    is; a float image in [0, 1] is clamped to [0, 1], multiplied by 255 in float32 and rounded half to
    even (``(x.clamp(0, 1).numpy() * 255.0).round().astype(np.uint8)``).

    >>> quantize_uint8(np.array([0.5 / 255, 1.5 / 255, 1.2, -0.1], np.float32)).tolist()
    [0, 2, 255, 0]
    """
    if image.dtype == np.uint8:
        return image
    scaled = np.clip(to_unit_float32(image), 0.0, 1.0) * np.float32(255.0)
    return np.round(scaled).astype(np.uint8)


def psnr_uint8(pred: np.ndarray, gt: np.ndarray) -> float:
    """EMA-VFI @ a42a2b8 / VFIMamba @ 9e6afab ``benchmark/Xiph.py``: the prediction is clamped and rounded
    to uint8 (``quantize_uint8``), then ``skimage.metrics.peak_signal_noise_ratio(image_true=gt,
    image_test=pred, data_range=255)``: both cast to float64, ``10 log10(255^2 / mse)``; inf if mse is 0.
    Not comparable with ``amt`` (docs/protocols/frame_interpolation.md: "EMA-VFI / VFIMamba on Xiph round the
    prediction to uint8").
    """
    return psnr_from_mse(mean_squared_error(quantize_uint8(pred).astype(np.float64),
                                            quantize_uint8(gt).astype(np.float64)), 255.0)
