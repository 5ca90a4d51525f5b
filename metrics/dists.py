"""DISTS (Ding et al., "Image Quality Assessment: Unifying Structure and Texture Similarity", TPAMI 2020),
written anew; the tests compare it with ``DISTS_pytorch.DISTS`` (PyPI ``DISTS-pytorch`` 0.1) on the same weights.

The formula (``DISTS_pytorch/DISTS_pt.py``):

1. Input RGB in [0, 1] (uint8 / 255; float predictions as given, not clamped), normalised with the
   ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).
2. torchvision VGG16 ``features[0:30]`` with its four max-pools (modules 4, 9, 16, 23) replaced by an
   L2 pooling: ``sqrt(conv(x^2, g, stride 2, padding 1, per channel) + 1e-12)``, with ``g`` the outer
   product of ``numpy.hanning(5)[1:-1]`` with itself, normalised to sum 1.
3. Six feature sets: the input itself (3 channels) and relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
   (64, 128, 256, 512, 512 channels; 1475 in all).
4. Per channel: ``S1 = (2 mx my + c1) / (mx^2 + my^2 + c1)`` and ``S2 = (2 cov + c2) / (vx + vy + c2)`` with
   spatial means, biased variances and covariance, ``c1 = c2 = 1e-6``.
5. ``DISTS = 1 - sum_k sum_c (alpha_kc S1_kc + beta_kc S2_kc)`` with alpha, beta (1, 1475, 1, 1) divided
   by ``sum(alpha) + sum(beta)``.

Weights through ``triptych.weights``: the VGG16 trunk ``lpips_backbone_vgg16`` (torchvision's ImageNet
file, as ``DISTS_pytorch`` builds ``vgg16(pretrained=True)``) and alpha / beta ``dists_alpha_beta`` from
the ``DISTS-pytorch`` wheel. Lower is more similar; identical images give 0 up to float32 rounding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from triptych.errors import InputError, TriptychError
from triptych.metrics.perceptual import device, features_state, trunk_features
from triptych.weights import per_file_cache

BACKBONE_WEIGHTS = "lpips_backbone_vgg16"
ALPHA_BETA_WEIGHTS = "dists_alpha_beta"
POOLS = (4, 9, 16, 23)
TAPS = (3, 8, 15, 22, 29)
CHANNELS = (3, 64, 128, 256, 512, 512)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
C1 = C2 = 1e-6


def hanning_filter() -> torch.Tensor:
    """The 3x3 L2-pooling kernel: ``hanning(5)[1:-1]`` outer itself, normalised to sum 1 (float32)."""
    a = np.hanning(5)[1:-1]
    g = torch.tensor(a[:, None] * a[None, :], dtype=torch.float32)
    return g / g.sum()


class DistsNet(nn.Module):
    """DISTS; ``forward(x, y)`` takes (B, 3, H, W) tensors in [0, 1] and returns (B,) distances."""

    def __init__(self, backbone: Mapping[str, torch.Tensor], alpha_beta: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        self.features = trunk_features("vgg16", TAPS[-1] + 1)
        self.features.load_state_dict(features_state(backbone, TAPS[-1] + 1, BACKBONE_WEIGHTS), strict=True)
        if sorted(alpha_beta) != ["alpha", "beta"]:
            raise TriptychError(f"{ALPHA_BETA_WEIGHTS}: expected keys alpha, beta; got {', '.join(alpha_beta)}",
                                fix="pass DISTS_pytorch/weights.pt")
        total = sum(CHANNELS)
        for key in ("alpha", "beta"):
            if tuple(alpha_beta[key].shape) != (1, total, 1, 1):
                raise TriptychError(f"{ALPHA_BETA_WEIGHTS}: {key} has shape {tuple(alpha_beta[key].shape)}, "
                                    f"expected (1, {total}, 1, 1)")
        self.register_buffer("alpha", alpha_beta["alpha"].detach().clone().float())
        self.register_buffer("beta", alpha_beta["beta"].detach().clone().float())
        self.register_buffer("kernel", hanning_filter()[None, None])
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def _l2pool(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.kernel.expand(x.shape[1], 1, 3, 3)
        return torch.sqrt(F.conv2d(x * x, kernel, stride=2, padding=1, groups=x.shape[1]) + 1e-12)

    def _feature_sets(self, x: torch.Tensor) -> list[torch.Tensor]:
        out, h = [x], (x - self.mean) / self.std
        for i, module in enumerate(self.features):
            h = self._l2pool(h) if i in POOLS else module(h)
            if i in TAPS:
                out.append(h)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        w_sum = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / w_sum, CHANNELS, dim=1)
        betas = torch.split(self.beta / w_sum, CHANNELS, dim=1)
        structure, texture = 0.0, 0.0
        for fx, fy, a, b in zip(self._feature_sets(x), self._feature_sets(y), alphas, betas):
            mx, my = fx.mean((2, 3), keepdim=True), fy.mean((2, 3), keepdim=True)
            vx, vy = ((fx - mx) ** 2).mean((2, 3), keepdim=True), ((fy - my) ** 2).mean((2, 3), keepdim=True)
            cov = (fx * fy).mean((2, 3), keepdim=True) - mx * my
            structure = structure + (a * (2 * mx * my + C1) / (mx ** 2 + my ** 2 + C1)).sum(1, keepdim=True)
            texture = texture + (b * (2 * cov + C2) / (vx + vy + C2)).sum(1, keepdim=True)
        return 1 - (structure + texture).flatten()


@per_file_cache(maxsize=2)
def dists_network(trunk: Path | None = None) -> DistsNet:
    """The registered DISTS network, loaded once (a missing VGG16 file raises the weights manager's error);
    ``trunk`` a user's VGG16 file in place of the registry's (``measure --weights``)."""
    from triptych import weights

    return DistsNet(weights.load_trunk(BACKBONE_WEIGHTS, trunk), weights.load(ALPHA_BETA_WEIGHTS)).to(device())


def to_unit_tensor(image: np.ndarray, name: str) -> torch.Tensor:
    """(H, W, 3) uint8 -> / 255; float in [0, 1] as is (not clamped); as (1, 3, H, W) float32."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"{name}: shape {image.shape}, expected (H, W, 3) RGB", fix="pass RGB frames")
    if image.dtype == np.uint8:
        array = image.astype(np.float32) / np.float32(255.0)
    elif np.issubdtype(image.dtype, np.floating):
        array = image.astype(np.float32)
    else:
        raise InputError(f"{name}: unsupported dtype {image.dtype}", fix="pass uint8 images or float32 in [0, 1]")
    if not np.isfinite(array).all():
        raise InputError(f"{name}: contains NaN or Inf", fix="fix the method's output")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]


def dists_value(network: DistsNet, pred: np.ndarray, gt: np.ndarray) -> float:
    """DISTS of one pair with a given network (argument order as ``DISTS_pytorch``: reference first)."""
    if pred.shape[:2] != gt.shape[:2]:
        raise InputError(f"prediction is {pred.shape[1]}x{pred.shape[0]} but ground truth {gt.shape[1]}x{gt.shape[0]}",
                         fix="predict at the ground truth's resolution")
    x, y = to_unit_tensor(gt, "ground truth").to(device()), to_unit_tensor(pred, "prediction").to(device())
    with torch.no_grad():
        return float(network(x, y)[0].double())


def dists(pred: np.ndarray, gt: np.ndarray, trunk: Path | None = None) -> float:
    """Metric ``dists``, variant ``ding2020``: DISTS with the registered weights (``trunk``: a user's VGG16)."""
    return dists_value(dists_network(trunk), pred, gt)
