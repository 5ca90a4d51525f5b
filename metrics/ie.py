"""Interpolation error (IE): two named variants, which agree on uint8 images and differ on float ones.

- ``amt``: AMT @ 70f988f ``metrics/psnr_ssim.py: calculate_ie(a, b) = mean(|round(a * 255) - round(b * 255)|)``
  with ``torch.round`` (half to even) on float32 tensors in [0, 1]. The benchmark scripts never call it; it
  is the IE of AMT's code, not Middlebury's (which is an RMS error).
- ``vfibench``: VFIBenchmark @ 40a05ec (PerVFI's evaluation), ``mean(|pred - gt| * 255)`` on PNGs, the
  prediction written by ``to_pil_image``, which truncates float levels instead of rounding them.
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


def pil_levels(image: np.ndarray) -> np.ndarray:
    """A prediction as VFIBenchmark writes it to PNG before scoring: uint8 stays as is; a float image is
    clamped to [0, 1] (VFIBenchmark's outputs always are: the ``infer`` wrappers of ``build_models.py``
    clamp each method's output, VFIformer's and PerVFI's inside their networks, ``VFIformer_arch.py`` and
    ``models/pervfi/pipeline.py`` ``torch.clamp(pred, 0, 1)``), then ``TF.to_pil_image``: ``(x * 255).astype(uint8)`` in float32, i.e.
    TRUNCATED to the level below, not rounded (torchvision 0.29; older releases spell it
    ``x.mul(255).byte()``, the same truncation).

    >>> pil_levels(np.array([12.9 / 255, 0.5 / 255, 1.2, -0.1], np.float32)).tolist()
    [12, 0, 255, 0]
    """
    if image.dtype == np.uint8:
        return image
    return (np.clip(to_unit_float32(image), 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)


def ie_vfibench(pred: np.ndarray, gt: np.ndarray) -> float:
    """VFIBenchmark (the evaluation code of PerVFI, Wu et al. CVPR 2024; mulns/VFIBenchmark @ 40a05ec
    ``metrics/__init__.py: ie`` via ``basicMetric.calc_ie``): the prediction is first saved as a PNG
    (``evaluate_imageDst.py``: ``TF.to_pil_image(out)``, so float levels are truncated, ``pil_levels``),
    both PNGs are read back (``cv2.imread`` + BGR->RGB, ``ToTensor``: uint8 / 255 in float32) and
    ``mean(|pred - gt| * 255)`` is taken over the channels and pixels of each image (lower is better);
    the dataset figure is the mean of the per-image values.

    On two uint8 images this is ``mean(|pred - gt|)`` exactly as ``ie:amt`` is; they differ on float
    predictions, which VFIBenchmark truncates and AMT rounds half to even. The levels here are exact
    integers and their mean is taken in float64, where the reference subtracts ``p / 255 - g / 255`` in
    float32 and averages in float32 (< 1e-5 apart on the VFI fixture, tested).

    >>> gt = np.zeros((2, 2, 3), np.uint8); pred = np.zeros((2, 2, 3), np.float32)
    >>> pred[0, 0, 0] = np.float32(12.9 / 255)  # truncated to level 12 (ie:amt rounds it to 13)
    >>> ie_vfibench(pred, gt)
    1.0
    """
    diff = np.abs(pil_levels(pred).astype(np.int16) - pil_levels(gt).astype(np.int16))
    return float(np.mean(diff, dtype=np.float64))
