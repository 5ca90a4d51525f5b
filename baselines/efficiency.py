"""Parameters, FLOPs and runtime of a method at one size: the efficiency columns of thesis tables 3.1 and 4.1.

The reference models (AMT, E2FGVI, PhotoMaker) are counted from their architectures alone
(``baselines.architecture_cost``); this module measures any interpolation method by calling it, and
times calls (``time_calls``) for every task.

The thesis reports AMT's parameters, FLOPs "at 720p" and runtime "RTX 3090, 1280x720, mean of 1000 runs"
(docs/protocols/frame_interpolation.md, "Runtime"). Here, for one call ``interpolate(I0, I1, t)`` on a seeded
random 1280x720 pair:

- parameters: the elements of every distinct parameter of the method's torch modules (0 for a method
  without any, e.g. the OpenCV baselines);
- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over the first (warm-up) call. It counts a
  multiply-add as 2 FLOPs (so MACs = FLOPs / 2) and counts only the operators it has formulas for
  (convolutions, matrix products, attention); element-wise ops, ``grid_sample`` and resizing are not
  counted. Tools such as thop / ptflops report MACs under the name FLOPs: AMT-S's published 0.12 "TFLOPs"
  at 720p matches its 0.116 T MACs here (0.232 T FLOPs). A method without torch operators gets ``None``,
  never 0;
- runtime: the median wall time of ``runs`` further calls (``time.perf_counter``, CUDA synchronised on a
  GPU), after the warm-up call, with the hardware recorded (``triptych.provenance``).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from triptych.errors import InputError

FLOP_COUNTER = ("torch.utils.flop_counter.FlopCounterMode: a multiply-add counts as 2 FLOPs (MACs = FLOPs / 2); "
                "only operators with a FLOP formula (convolution, mm/bmm/addmm, attention) are counted")


@dataclass(frozen=True)
class Efficiency:
    """One method's efficiency figures at one frame size."""

    width: int
    height: int
    device: str
    params: int
    flops: int | None  # None: the method runs no counted torch operator
    flops_by_operator: dict[str, int]
    runtimes_ms: list[float] = field(default_factory=list)

    @property
    def macs(self) -> int | None:
        return None if self.flops is None else self.flops // 2

    @property
    def median_ms(self) -> float:
        return float(statistics.median(self.runtimes_ms))


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` -> (width, height)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise InputError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1280x720", fix="pass e.g. --size 1280x720")
    return int(parts[0]), int(parts[1])


def torch_modules(method: Any) -> list[nn.Module]:
    """The method itself if it is a module, else the modules among its attributes."""
    if isinstance(method, nn.Module):
        return [method]
    return [v for v in vars(method).values() if isinstance(v, nn.Module)]


def count_parameters(method: Any) -> int:
    """Elements of every distinct parameter of the method's torch modules (a shared tensor counts once)."""
    seen: dict[int, int] = {}
    for module in torch_modules(method):
        for p in module.parameters():
            seen[id(p)] = p.numel()
    return sum(seen.values())


def seeded_pair(width: int, height: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two uniform random (3, H, W) frames in [0, 1] from a seeded generator (content does not change
    FLOPs; it changes the runtime of no method here beyond noise)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(3, height, width, generator=gen), torch.rand(3, height, width, generator=gen)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure_efficiency(method: Any, width: int, height: int, runs: int, device: str = "cpu",
                       t: float = 0.5) -> Efficiency:
    """Parameters, FLOPs (first call, under ``FlopCounterMode``) and ``runs`` timed calls of
    ``method.interpolate`` on a seeded random pair. ``device`` other than cpu moves the method's torch
    modules there (the method moves its inputs to its own device, ``triptych.methods``)."""
    from torch.utils.flop_counter import FlopCounterMode

    if runs < 1:
        raise InputError(f"--runs {runs}: at least one timed run is needed", fix="pass e.g. --runs 10")
    move_to(method, device)
    frame0, frame1 = seeded_pair(width, height)
    with torch.no_grad():
        counter = FlopCounterMode(display=False)
        with counter:
            method.interpolate(frame0, frame1, t)
        total = int(counter.get_total_flops())
        by_op = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    runtimes = time_calls(lambda: method.interpolate(frame0, frame1, t), runs, device)
    return Efficiency(width, height, device, count_parameters(method), total if total > 0 else None, by_op,
                      runtimes)


def move_to(method: Any, device: str) -> None:
    """Move the method's torch modules to ``device`` (a method without any runs on the CPU only)."""
    modules = torch_modules(method)
    if device != "cpu":
        if not modules:
            raise InputError(f"--device {device}: this method has no torch modules to move",
                             fix="time it on --device cpu")
        for module in modules:
            module.to(device)


def time_calls(call: Any, runs: int, device: str) -> list[float]:
    """Wall time in ms of ``runs`` calls (``time.perf_counter``, CUDA synchronised), without gradients."""
    runtimes = []
    with torch.no_grad():
        for _ in range(runs):
            _sync(device)
            start = time.perf_counter()
            call()
            _sync(device)
            runtimes.append((time.perf_counter() - start) * 1000.0)
    return runtimes


def seeded_video(width: int, height: int, frames: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded uniform random video (T, 3, H, W) in [0, 1] and its masks (T, 1, H, W): a centred hole of
    half the width and height in every frame (E2FGVI's cost does not depend on the mask's shape)."""
    gen = torch.Generator().manual_seed(seed)
    video = torch.rand(frames, 3, height, width, generator=gen)
    masks = torch.zeros(frames, 1, height, width)
    masks[..., height // 4:height // 4 + height // 2, width // 4:width // 4 + width // 2] = 1.0
    return video, masks
