"""``metrics/uniform_ssim.py``: int32 window sums and the map formed block by block equal scikit-image's
``structural_similarity`` (the formulation E2FGVI calls, win_size 65) on frames of many shapes, across
block edges and at the largest sums uint8 frames can give."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from triptych.metrics.ssim import ssim_win65
from triptych.metrics.uniform_ssim import ROWS_PER_BLOCK


def _skimage_win65(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(structural_similarity(gt.astype(np.float64), pred.astype(np.float64), data_range=255.0,
                                       channel_axis=-1, win_size=65))


@pytest.mark.parametrize("shape", [(65, 65, 3), (65 + ROWS_PER_BLOCK, 90, 3), (64 + 2 * ROWS_PER_BLOCK, 70, 3),
                                   (240, 432, 3), (301, 77, 1)])
def test_win65_equals_skimage_across_block_edges(shape):
    rng = np.random.default_rng(sum(shape))
    gt = rng.integers(0, 256, shape, dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-40, 41, shape), 0, 255).astype(np.uint8)
    assert ssim_win65(pred, gt) == pytest.approx(_skimage_win65(pred, gt), abs=1e-12)
    as_float = ssim_win65(pred.astype(np.float64) / 255.0, gt.astype(np.float64) / 255.0)
    assert as_float == pytest.approx(_skimage_win65(pred, gt), abs=1e-12)


def test_win65_at_the_largest_uint8_sums():
    """All-255 frames give the largest window sums (2 * 255^2 * 65^2 for x^2 + y^2): no int32 overflow."""
    white = np.full((130, 140, 3), 255, np.uint8)
    half = white.copy()
    half[:, ::2] = 0
    assert ssim_win65(white, white) == pytest.approx(1.0, abs=1e-15)
    assert ssim_win65(half, white) == pytest.approx(_skimage_win65(half, white), abs=1e-12)
