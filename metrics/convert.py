"""The two input conventions of the published protocols, in one place.

E2FGVI scores uint8 frames on the [0, 255] scale in float64; AMT scores float32 tensors in [0, 1]
(``img2tensor``: uint8 / 255). A ``.npy`` prediction is float32 in [0, 1] and is never rounded.
"""

from __future__ import annotations

import numpy as np

from triptych.errors import InputError


def to_float64_255(image: np.ndarray) -> np.ndarray:
    """uint8 -> float64 as is; float in [0, 1] -> float64 x 255 (no rounding, no clipping)."""
    if image.dtype == np.uint8:
        return image.astype(np.float64)
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float64) * 255.0
    raise InputError(f"unsupported image dtype {image.dtype}", fix="pass uint8 images or float32 arrays in [0, 1]")


def to_unit_float32(image: np.ndarray) -> np.ndarray:
    """uint8 -> float32 / 255 (AMT ``img2tensor``); float -> float32 as is."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32, copy=False)
    raise InputError(f"unsupported image dtype {image.dtype}", fix="pass uint8 images or float32 arrays in [0, 1]")
