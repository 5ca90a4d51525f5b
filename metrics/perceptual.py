"""LPIPS (Zhang et al., CVPR 2018), written anew on torchvision's AlexNet / VGG16 feature layers.

The formula is that of the ``lpips`` package (richzhang/PerceptualSimilarity, ``lpips`` 0.1.4 on PyPI,
``LPIPS(net=..., version='0.1')``), which the tests compare against on the same weights:

1. Input RGB in [-1, 1]: uint8 images are ``x / 127.5 - 1`` (``lpips.im2tensor``), float images in
   [0, 1] are ``2x - 1`` (``normalize=True``), not clamped.
2. v0.1 scaling layer: ``(x - shift) / scale`` with shift (-0.030, -0.088, -0.188) and scale
   (0.458, 0.448, 0.450).
3. Five taps of the ImageNet trunk: AlexNet ``features`` after modules 1, 4, 7, 9, 11 (relu1..relu5);
   VGG16 ``features`` after modules 3, 8, 15, 22, 29 (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3).
4. Per tap: unit-normalise each feature vector over channels (``f / (||f||_2 + 1e-10)``), square the
   difference of the two images', and project it with that tap's v0.1 linear head (a 1x1 conv, 1 output
   channel, no bias) into a distance map.
5. ``lpips``: the sum over taps of each map's spatial mean (one value per image pair).
   ``distance_map``: the ``spatial=True`` map, each tap's map bilinearly upsampled (align_corners False)
   to the image size and summed over taps; its mean over pixels is close to, but not exactly, the value.

Weights come through ``triptych.weights``: the trunk is torchvision's ImageNet state dict
(``lpips_backbone_alex`` / ``lpips_backbone_vgg16``, only its ``features.*`` keys are used, loaded
strictly), the heads are the v0.1 files of the ``lpips`` wheel (``lpips_lin_alex_v0_1`` /
``lpips_lin_vgg_v0_1``). Nothing is downloaded by torchvision. Inference runs in float32 on CUDA when
available, else on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from triptych.errors import InputError, TriptychError
from triptych.weights import per_file_cache


@dataclass(frozen=True)
class Trunk:
    """One LPIPS trunk: the torchvision builder, the tap indices of its ``features`` and the weights names."""

    builder: str
    taps: tuple[int, ...]
    channels: tuple[int, ...]
    backbone_weights: str
    head_weights: str


TRUNKS: dict[str, Trunk] = {
    "alex": Trunk("alexnet", (1, 4, 7, 9, 11), (64, 192, 384, 256, 256), "lpips_backbone_alex", "lpips_lin_alex_v0_1"),
    "vgg": Trunk("vgg16", (3, 8, 15, 22, 29), (64, 128, 256, 512, 512), "lpips_backbone_vgg16", "lpips_lin_vgg_v0_1"),
}
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10


def trunk_features(builder: str, depth: int) -> nn.Sequential:
    """The first ``depth`` modules of torchvision's ``<builder>().features``, randomly initialised (no download)."""
    import torchvision

    return nn.Sequential(*list(getattr(torchvision.models, builder)(weights=None).features)[:depth])


def features_state(backbone: Mapping[str, torch.Tensor], depth: int, what: str) -> dict[str, torch.Tensor]:
    """The ``features.<i>.*`` entries (i < depth) of a torchvision classifier state dict, prefix stripped."""
    out = {}
    for key, value in backbone.items():
        if key.startswith("features."):
            index = int(key.split(".")[1])
            if index < depth:
                out[key[len("features."):]] = value
    if not out:
        raise TriptychError(f"{what}: no 'features.*' keys (got {', '.join(list(backbone)[:4])}, ...)",
                            fix="pass torchvision's ImageNet state dict of the trunk (e.g. alexnet-owt-7be5be79.pth)")
    return out


class LpipsNet(nn.Module):
    """The LPIPS network of one trunk; ``forward(x0, x1)`` takes (B, 3, H, W) tensors in [-1, 1]."""

    def __init__(self, net: str, backbone: Mapping[str, torch.Tensor], heads: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        if net not in TRUNKS:
            raise TriptychError(f"unknown LPIPS trunk {net!r}", fix=f"use one of: {', '.join(TRUNKS)}")
        trunk = TRUNKS[net]
        self.net = net
        self.taps = trunk.taps
        self.features = trunk_features(trunk.builder, trunk.taps[-1] + 1)
        self.features.load_state_dict(features_state(backbone, trunk.taps[-1] + 1, trunk.backbone_weights),
                                      strict=True)
        keys = [f"lin{i}.model.1.weight" for i in range(len(trunk.taps))]
        if sorted(heads) != sorted(keys):
            raise TriptychError(f"{trunk.head_weights}: expected the keys {', '.join(keys)}, got {', '.join(heads)}",
                                fix="pass the lpips v0.1 head file of this trunk")
        self.heads = nn.ParameterList([nn.Parameter(heads[k].detach().clone().float(), requires_grad=False)
                                       for k in keys])
        for head, channels in zip(self.heads, trunk.channels):
            if tuple(head.shape) != (1, channels, 1, 1):
                raise TriptychError(f"{trunk.head_weights}: a head of shape {tuple(head.shape)}, expected "
                                    f"(1, {channels}, 1, 1)")
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out, h = [], (x - self.shift) / self.scale
        for i, module in enumerate(self.features):
            h = module(h)
            if i in self.taps:
                out.append(h / (torch.sqrt(torch.sum(h * h, dim=1, keepdim=True)) + EPS))
        return out

    def layer_maps(self, x0: torch.Tensor, x1: torch.Tensor) -> list[torch.Tensor]:
        """Per tap, the head's distance map (B, 1, h_l, w_l)."""
        return [F.conv2d((a - b) ** 2, head) for a, b, head in zip(self._taps(x0), self._taps(x1), self.heads)]

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """LPIPS per pair, (B,): the sum over taps of each map's spatial mean."""
        return torch.stack([m.mean(dim=(1, 2, 3)) for m in self.layer_maps(x0, x1)]).sum(dim=0)

    def distance_map(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """The ``spatial=True`` map (B, 1, H, W): each tap's map upsampled bilinearly to H x W, summed."""
        size = x0.shape[-2:]
        maps = [F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in self.layer_maps(x0, x1)]
        return torch.stack(maps).sum(dim=0)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@per_file_cache(maxsize=4)
def lpips_network(net: str, trunk: Path | None = None) -> LpipsNet:
    """The registered LPIPS network of a trunk, loaded once through the weights manager (missing trunk
    weights raise its ``MissingWeightsError``, naming the file, its URL and the import command); ``trunk``
    a user's file in place of the registry's trunk (``measure --weights``), the v0.1 heads still the
    registry's."""
    from triptych import weights

    if net not in TRUNKS:
        raise TriptychError(f"unknown LPIPS trunk {net!r}", fix=f"use one of: {', '.join(TRUNKS)}")
    spec = TRUNKS[net]
    return LpipsNet(net, weights.load_trunk(spec.backbone_weights, trunk), weights.load(spec.head_weights)).to(device())


def to_lpips_input(image: np.ndarray, name: str = "image") -> torch.Tensor:
    """(H, W, 3) uint8 -> ``x / 127.5 - 1``; float in [0, 1] -> ``2x - 1`` (not clamped); as (1, 3, H, W) float32."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"{name}: shape {image.shape}, expected (H, W, 3) RGB", fix="pass RGB frames")
    if image.dtype == np.uint8:
        array = image.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    elif np.issubdtype(image.dtype, np.floating):
        array = image.astype(np.float32) * np.float32(2.0) - np.float32(1.0)
    else:
        raise InputError(f"{name}: unsupported dtype {image.dtype}", fix="pass uint8 images or float32 in [0, 1]")
    if not np.isfinite(array).all():
        raise InputError(f"{name}: contains NaN or Inf", fix="fix the method's output")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape[:2] != gt.shape[:2]:
        raise InputError(f"prediction is {pred.shape[1]}x{pred.shape[0]} but ground truth {gt.shape[1]}x{gt.shape[0]}",
                         fix="predict at the ground truth's resolution")
    return to_lpips_input(pred, "prediction").to(device()), to_lpips_input(gt, "ground truth").to(device())


def lpips_value(network: LpipsNet, a: np.ndarray, b: np.ndarray) -> float:
    """LPIPS of two images with a given network (a pure function of its weights)."""
    x0, x1 = _pair(a, b)
    with torch.no_grad():
        return float(network(x0, x1)[0].double())


def lpips_map(network: LpipsNet, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The spatial LPIPS map (H, W) float64 of two images with a given network."""
    x0, x1 = _pair(a, b)
    with torch.no_grad():
        return network.distance_map(x0, x1)[0, 0].double().cpu().numpy()


def lpips(pred: np.ndarray, gt: np.ndarray, net: str = "alex", trunk: Path | None = None) -> float:
    """Metric ``lpips`` (variants ``alex`` and ``vgg``): whole-frame LPIPS v0.1 with the registered weights
    (``trunk``: a user's trunk file instead of the registry's, as for every ``trunk`` parameter here)."""
    return lpips_value(lpips_network(net, trunk), pred, gt)


def lpips_region_value(network: LpipsNet, pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, region: str) -> float:
    """Mean of the spatial LPIPS map over the pixels of one region (see ``lpips_region``)."""
    from triptych.metrics.masked import region_of

    sel = region_of(hole, region)
    if sel.shape != gt.shape[:2]:
        raise InputError(f"mask is {sel.shape[1]}x{sel.shape[0]} but the frames are {gt.shape[1]}x{gt.shape[0]}",
                         fix="give one mask per frame at the frames' resolution")
    if not sel.any():
        raise InputError(f"the {region} region is empty, so {region}-only LPIPS is undefined",
                         fix="drop this frame, or score it with the whole-frame metric")
    return float(lpips_map(network, pred, gt)[sel].mean(dtype=np.float64))


def lpips_region(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, region: str = "hole", net: str = "alex",
                 trunk: Path | None = None) -> float:
    """Metric ``lpips_masked``, variants ``hole`` / ``valid``: triptych's region LPIPS.

    DEVIL (MichiganCOG/video-inpainting-evaluation @ d339a12) has no hole-only LPIPS. Here it is the mean,
    over the pixels of the region (hole: mask > 0; valid: its complement), of LPIPS's ``spatial=True``
    distance map (``LpipsNet.distance_map``). The trunk's receptive field still sees the pixels around
    the region, as any windowed metric does; the region only chooses which map pixels are averaged.
    """
    return lpips_region_value(lpips_network(net, trunk), pred, gt, mask, region)


def composite(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """DEVIL's composited prediction ``C = M * G + (1 - M) * P`` (``common_util/image.py get_comp_frame``,
    where M = 1 marks the known pixels): the prediction inside the hole, the ground truth elsewhere, in
    the prediction's dtype."""
    sel = np.asarray(hole) > 0
    if sel.shape != gt.shape[:2] or pred.shape[:2] != gt.shape[:2]:
        raise InputError(f"mask is {sel.shape[1]}x{sel.shape[0]} but the frames are {gt.shape[1]}x{gt.shape[0]}",
                         fix="give one mask per frame at the frames' resolution")
    base = gt if pred.dtype == gt.dtype else gt.astype(np.float32) / np.float32(255.0)
    return np.where(sel[..., None], pred, base).astype(pred.dtype, copy=False)


def lpips_devil(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, net: str = "alex",
                trunk: Path | None = None) -> float:
    """Metric ``lpips_masked``, variant ``devil``: whole-frame LPIPS of DEVIL's composited prediction.

    DEVIL @ d339a12 (commit "Fix LPIPS producing random results", which replaced its vendored LPIPS by
    the ``lpips`` package) scores, in ``lpips_computer.py``, ``lpips.LPIPS(net='alex')(gt, C)``: the
    ImageNet AlexNet trunk with the v0.1 heads, on ``uint8 / 255`` float32 frames mapped by ``2x - 1``,
    one value per frame, per-video means, then the mean over videos. This is that value: the frames here
    are ``uint8 / 127.5 - 1`` (``to_lpips_input``), the same levels to within 2e-7 (tested against the
    ``lpips`` package fed DEVIL's way). The earlier DEVIL commits built the trunk with
    ``pretrained=False``, which d339a12 fixed.
    """
    return lpips_value(lpips_network(net, trunk), composite(pred, gt, mask), gt)
