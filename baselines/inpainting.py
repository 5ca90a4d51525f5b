"""Simple video completion baselines (implement ``triptych.methods.Inpainter``)."""

from __future__ import annotations

import torch


class MeanFill:
    """Fills each frame's hole with the mean colour of that frame's visible pixels: a floor that any
    method must beat. Deterministic; no weights."""

    def inpaint(self, frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        visible = 1.0 - masks
        counts = visible.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
        mean = (frames * visible).sum(dim=(2, 3), keepdim=True) / counts
        return frames * visible + mean * masks


def make_mean_fill() -> MeanFill:
    return MeanFill()
