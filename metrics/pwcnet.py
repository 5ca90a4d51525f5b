"""PWC-Net (Sun et al., "PWC-Net: CNNs for Optical Flow Using Pyramid, Warping, and Cost Volume", CVPR 2018)
as FloLPIPS computes its flows: sniklaus/pytorch-pwc's ``default`` network in the copy VFIBenchmark (PerVFI)
@ 40a05ec vendors as ``metrics/flolpips/pwcnet.py`` (identical to danier97/flolpips @ 26ea00f ``pwcnet.py``),
written anew in plain torch. Facts followed:

- weights: ``network-default.pytorch`` (registry entry ``pwcnet_default``), a plain state dict whose keys
  are the 2018 names ``moduleExtractor.moduleOne.0.weight`` ... (the reference renames ``module`` to
  ``net`` on loading); the attribute names below reproduce the file's keys, so it loads strictly as it is;
- input: RGB in [0, 1] (``TF.to_tensor`` of the frames; no BGR swap, no mean subtraction), resized
  bilinearly (align_corners False) to the next multiples of 64; the network's flow times 20 is resized
  bilinearly back to (H, W) and its x / y components scaled by W / W64 and H / H64;
- cost volume: the cupy ``FunctionCorrelation``, 81 channels for displacements dy, dx in [-4, 4]
  (channel ``(dy + 4) * 9 + (dx + 4)``), each the product of the two feature maps at x and x + d summed
  over channels and divided by their number, zero outside the map (``correlation``);
- warping (``backwarp``): grid_sample, bilinear, zero padding, align_corners False, on the pixel-centre
  grid ``linspace(-1 + 1/W, 1 - 1/W, W)`` plus the flow divided by ``(W - 1) / 2`` (resp. H), and a
  validity mask (a warped ones channel > 0.999) multiplied in;
- decoders at levels 6..2, each a DenseNet of five 3x3 convs (128, 128, 96, 64, 32) and a 3x3 flow conv;
  levels 5..2 upsample the previous flow and features with 4x4 stride-2 transposed convs and warp the
  second features by the upsampled flow times 0.625, 1.25, 2.5, 5.0; a refiner of seven dilated 3x3 convs
  (dilations 1, 2, 4, 8, 16, 1, 1) adds its output to level 2's flow. LeakyReLU 0.1 after every conv but
  the flow outputs.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from triptych.errors import InputError
from triptych.metrics.i3d import no_tf32

WEIGHTS_NAME = "pwcnet_default"  # triptych/data/weights.yaml
MAX_DISPLACEMENT = 4  # the cost volume's search radius: (2 * 4 + 1) ** 2 = 81 channels
FLOW_SCALE = 20.0  # the network predicts flow / 20
MULTIPLE = 64  # frames are resized to multiples of 64 (six stride-2 levels)
EXTRACTOR_WIDTHS = (16, 32, 64, 96, 128, 196)
DENSE_WIDTHS = (128, 128, 96, 64, 32)
WARP_SCALES = {5: 0.625, 4: 1.25, 3: 2.5, 2: 5.0}
LEVEL_NAMES = {2: "moduleTwo", 3: "moduleThr", 4: "moduleFou", 5: "moduleFiv", 6: "moduleSix"}
REFINER = ((128, 1), (128, 2), (128, 4), (96, 8), (64, 16), (32, 1), (2, 1))  # (width, dilation)


def correlation(first: torch.Tensor, second: torch.Tensor, radius: int = MAX_DISPLACEMENT) -> torch.Tensor:
    """The cost volume (N, (2r+1)^2, H, W): channel ``(dy + r) * (2r + 1) + (dx + r)`` at (y, x) is
    ``mean_c first[c, y, x] * second[c, y + dy, x + dx]``, 0 where y + dy or x + dx leaves the map."""
    if first.shape != second.shape or first.ndim != 4:
        raise InputError(f"correlation of feature maps of shapes {tuple(first.shape)} and {tuple(second.shape)}",
                         fix="pass two (N, C, H, W) maps of one shape")
    height, width = first.shape[-2:]
    padded = F.pad(second, (radius, radius, radius, radius))
    side = 2 * radius + 1
    return torch.cat([(first * padded[:, :, dy:dy + height, dx:dx + width]).mean(dim=1, keepdim=True)
                      for dy in range(side) for dx in range(side)], dim=1)


def backwarp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``image`` sampled at x + flow(x) (bilinear, zeros outside), with the reference's grid and flow
    normalisation and its validity mask (module docstring)."""
    n, _, height, width = flow.shape
    xs = torch.linspace(-1.0 + 1.0 / width, 1.0 - 1.0 / width, width, device=flow.device, dtype=flow.dtype)
    ys = torch.linspace(-1.0 + 1.0 / height, 1.0 - 1.0 / height, height, device=flow.device, dtype=flow.dtype)
    grid = torch.stack([xs.view(1, 1, width).expand(n, height, width),
                        ys.view(1, height, 1).expand(n, height, width)], dim=-1)
    shift = torch.stack([flow[:, 0] / ((image.shape[3] - 1.0) / 2.0),
                         flow[:, 1] / ((image.shape[2] - 1.0) / 2.0)], dim=-1)
    ones = image.new_ones((n, 1, height, width))
    warped = F.grid_sample(torch.cat([image, ones], dim=1), grid + shift, mode="bilinear", padding_mode="zeros",
                           align_corners=False)
    mask = (warped[:, -1:] > 0.999).to(warped.dtype)
    return warped[:, :-1] * mask


def _conv(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation)


def _leaky(*convs: nn.Conv2d) -> nn.Sequential:
    """Each conv followed by LeakyReLU(0.1): the Sequential indices (0, 2, 4, ...) of the checkpoint."""
    layers: list[nn.Module] = []
    for conv in convs:
        layers += [conv, nn.LeakyReLU(0.1)]
    return nn.Sequential(*layers)


class Extractor(nn.Module):
    """Six levels of three 3x3 convs (the first of stride 2): widths 16, 32, 64, 96, 128, 196."""

    def __init__(self) -> None:
        super().__init__()
        channels = 3
        for name, width in zip(("moduleOne", "moduleTwo", "moduleThr", "moduleFou", "moduleFiv", "moduleSix"),
                               EXTRACTOR_WIDTHS):
            self.add_module(name, _leaky(_conv(channels, width, stride=2), _conv(width, width), _conv(width, width)))
            channels = width

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = []
        for module in self.children():
            x = module(x)
            levels.append(x)
        return levels


def _decoder_input(level: int) -> int:
    """Channels entering level ``level``'s decoder: the cost volume, plus (below level 6) the first
    features, the upsampled flow and the upsampled feature flow."""
    side = 2 * MAX_DISPLACEMENT + 1
    return side * side if level == 6 else side * side + EXTRACTOR_WIDTHS[level - 1] + 2 + 2


class Decoder(nn.Module):
    """One pyramid level's flow estimator (module docstring)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level
        if level < 6:
            previous = _decoder_input(level + 1) + sum(DENSE_WIDTHS)
            self.moduleUpflow = nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1)
            self.moduleUpfeat = nn.ConvTranspose2d(previous, 2, 4, stride=2, padding=1)
        channels = _decoder_input(level)
        for name, width in zip(("moduleOne", "moduleTwo", "moduleThr", "moduleFou", "moduleFiv"), DENSE_WIDTHS):
            self.add_module(name, _leaky(_conv(channels, width)))
            channels += width
        self.moduleSix = nn.Sequential(_conv(channels, 2))

    def forward(self, first: torch.Tensor, second: torch.Tensor,
                previous: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(flow, features) of this level from the two feature maps and the coarser level's output."""
        if previous is None:
            features = F.leaky_relu(correlation(first, second), 0.1)
        else:
            flow = self.moduleUpflow(previous[0])
            upfeat = self.moduleUpfeat(previous[1])
            volume = F.leaky_relu(correlation(first, backwarp(second, flow * WARP_SCALES[self.level])), 0.1)
            features = torch.cat([volume, first, flow, upfeat], dim=1)
        for dense in (self.moduleOne, self.moduleTwo, self.moduleThr, self.moduleFou, self.moduleFiv):
            features = torch.cat([dense(features), features], dim=1)
        return self.moduleSix(features), features


class Refiner(nn.Module):
    """Context network: seven dilated 3x3 convs on level 2's features; its output is added to the flow."""

    def __init__(self) -> None:
        super().__init__()
        channels, layers = _decoder_input(2) + sum(DENSE_WIDTHS), []
        for width, dilation in REFINER[:-1]:
            layers.append(_conv(channels, width, dilation=dilation))
            channels = width
        width, dilation = REFINER[-1]
        self.moduleMain = nn.Sequential(*_leaky(*layers), _conv(channels, width, dilation=dilation))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.moduleMain(features)


class PWCNet(nn.Module):
    """The network with the checkpoint's state-dict layout; ``forward`` takes (N, 3, H, W) RGB in [0, 1]
    of any size and returns the flow first -> second (N, 2, H, W) in pixels, as the reference's
    ``Network.forward`` (resize to multiples of 64 and back)."""

    def __init__(self) -> None:
        super().__init__()
        self.moduleExtractor = Extractor()
        for level in sorted(LEVEL_NAMES):
            self.add_module(LEVEL_NAMES[level], Decoder(level))
        self.moduleRefiner = Refiner()

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        height, width = first.shape[-2:]
        size = (math.ceil(height / MULTIPLE) * MULTIPLE, math.ceil(width / MULTIPLE) * MULTIPLE)
        pyramids = [self.moduleExtractor(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
                    for x in (first, second)]
        estimate = None
        for level in (6, 5, 4, 3, 2):
            decoder = self._modules[LEVEL_NAMES[level]]
            estimate = decoder(pyramids[0][level - 1], pyramids[1][level - 1], estimate)
        assert estimate is not None
        flow = estimate[0] + self.moduleRefiner(estimate[1])
        flow = FLOW_SCALE * F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
        scale = torch.tensor([width / size[1], height / size[0]], dtype=flow.dtype, device=flow.device)
        return flow * scale.view(1, 2, 1, 1)


def build_pwcnet() -> PWCNet:
    """The bare network (construction-time initialisation; load weights before use)."""
    return PWCNet()


@functools.lru_cache(maxsize=2)
def load_pwcnet(weights: str | Path | None = None) -> PWCNet:
    """PWC-Net with the registry's ``pwcnet_default`` (a missing file raises ``MissingWeightsError``: what
    to fetch or import), or a user's state dict file, loaded strictly; eval mode, on ``device()``."""
    from triptych import weights as registry
    from triptych.metrics.perceptual import device

    state = registry.load(WEIGHTS_NAME) if weights is None else registry.load_state_dict(weights)
    model = build_pwcnet()
    mismatch = registry.state_mismatch(model.state_dict(), state)
    if mismatch:
        raise InputError(f"{weights or WEIGHTS_NAME}: not sniklaus/pytorch-pwc's network-default state dict: "
                         f"{mismatch.describe()}",
                         fix=f"import the file published at the URL of 'triptych weights list' ({WEIGHTS_NAME})")
    model.load_state_dict(state, strict=True)
    return model.eval().to(device())


def _frame_tensor(frame: np.ndarray, name: str) -> torch.Tensor:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise InputError(f"{name}: PWC-Net takes uint8 (H, W, 3) RGB frames, got {frame.dtype} {frame.shape}",
                         fix="pass frames as read by triptych.media.read_rgb")
    return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float().div(255.0)


def pwc_flow(model: PWCNet, frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
    """PWC-Net flow F_(a->b) of two uint8 RGB frames: float32 (H, W, 2), channel 0 = dx (conventions of
    ``triptych.vision.flow``)."""
    from triptych.vision.flow import check_flow

    if frame_a.shape != frame_b.shape:
        raise InputError(f"PWC-Net flow of frames of different sizes {frame_a.shape} and {frame_b.shape}",
                         fix="all frames of a video must have one size")
    device = next(model.parameters()).device
    a, b = (_frame_tensor(f, n).to(device) for f, n in ((frame_a, "frame a"), (frame_b, "frame b")))
    with torch.inference_mode(), no_tf32():  # full float32 convolutions on CUDA too
        flow = model(a, b)[0].permute(1, 2, 0).float().cpu().numpy()
    return check_flow(flow, "PWC-Net flow", frame_a.shape[:2])


def pwc_flow_function(weights: str | Path | None = None) -> Any:
    """``flow(a, b)`` with the loaded network, for ``temporal.flolpips_values``."""
    return functools.partial(pwc_flow, load_pwcnet(weights))
