"""The method itself (imported only when it is used: the package's ``__init__`` stays light, because
every triptych command loads the entry point)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _box(x: torch.Tensor, size: int) -> torch.Tensor:
    """A separable size x size box mean (zero padding), O(size) per pixel."""
    row = torch.full((1, 1, 1, size), 1.0 / size)
    x = F.conv2d(x, row, padding=(0, size // 2))
    return F.conv2d(x, row.transpose(2, 3), padding=(size // 2, 0))


class BlurFill:
    """Repeatedly replaces hole pixels with the mask-weighted mean of a growing neighbourhood."""

    def __init__(self, passes: int = 6) -> None:
        self.passes = passes

    def inpaint(self, frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        known = 1.0 - masks
        filled = frames * known
        weight = known.clone()
        for i in range(self.passes):
            size = 2 ** (self.passes - i) + 1
            num = _box(filled.reshape(-1, 1, *filled.shape[-2:]), size)
            den = _box(weight.expand_as(filled).reshape(-1, 1, *filled.shape[-2:]), size)
            estimate = (num / den.clamp_min(1e-6)).reshape(filled.shape)
            has = (den.reshape(filled.shape) > 1e-6).float()
            filled = frames * known + estimate * masks * has + filled * masks * (1 - has)
            weight = torch.maximum(weight, has[:, :1])
        return filled.clamp(0, 1)


def make_blur_fill(passes: int = 6) -> BlurFill:
    return BlurFill(passes)
