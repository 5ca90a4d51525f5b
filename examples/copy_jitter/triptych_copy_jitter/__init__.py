"""Copy and jitter: a portrait "generator" that returns a reference photo, mirrored and colour-jittered by
the seed. A complete external triptych method implementing ``triptych.methods.Generator``."""

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


def triptych_methods() -> dict:
    return {"copy-jitter": {
        "task": "personalization",
        "version": 1,
        "description": "example plugin: a reference photo, mirrored and colour-jittered by the seed",
        "callable": "triptych_copy_jitter:make_copy_jitter",
        "params": {"strength": 0.1},
    }}
