"""Simple frame interpolation baselines (implement ``triptych.methods.Interpolator``)."""

from __future__ import annotations

import torch


class LinearBlend:
    """``(1 - t) * frame0 + t * frame1`` in float32, unrounded: the no-motion floor of every VFI table."""

    def interpolate(self, frame0: torch.Tensor, frame1: torch.Tensor, t: float) -> torch.Tensor:
        if t == 0.5:  # the same operations as (img2tensor(i0) + img2tensor(i1)) / 2, bit for bit
            return (frame0 + frame1) / 2
        return (1.0 - t) * frame0 + t * frame1


def make_linear_blend() -> LinearBlend:
    return LinearBlend()
