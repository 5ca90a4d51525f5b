"""The method itself (imported only when it is used: the package's ``__init__`` stays light, because
every triptych command loads the entry point)."""

from __future__ import annotations

from typing import Sequence

import torch


class CopyJitter:
    def __init__(self, strength: float = 0.1) -> None:
        self.strength = strength

    def generate(self, reference_images: Sequence[torch.Tensor], prompt: str, seed: int) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        image = reference_images[seed % len(reference_images)]
        if seed % 2:
            image = image.flip(-1)
        gain = 1.0 + self.strength * (2 * torch.rand(3, 1, 1, generator=generator) - 1)
        return [(image * gain).clamp(0, 1)]


def make_copy_jitter(strength: float = 0.1) -> CopyJitter:
    return CopyJitter(strength)
