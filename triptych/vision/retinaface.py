"""RetinaFace (biubug6/Pytorch_Retinaface), a checkpoint-compatible port: network, priors, decoding, NMS.

The two released backbones, ``mobilenet0.25`` (``mobilenet0.25_Final.pth``) and ``resnet50``
(``Resnet50_Final.pth``), load strictly from the released state dicts, whose keys carry the ``module.``
prefix of a DataParallel model (stripped here), or from a safetensors file with the same keys.
``RetinaFaceDetector.detect`` follows the reference inference recipe (``detect.py``, docs/retinaface.md):
BGR pixels minus (104, 117, 123), no resize; priors over strides 8/16/32; boxes and 5 landmarks decoded
with variances (0.1, 0.2); scores above 0.02; top 5000; greedy NMS at IoU 0.4 with the +1 pixel area
convention; the first 750 survivors. Equal scores keep ascending prior order (a stable descending sort),
which any port can reproduce; the reference's ``argsort()[::-1]`` leaves that order to numpy's sort kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from triptych.errors import TriptychError

MEAN_BGR = (104.0, 117.0, 123.0)
VARIANCES = (0.1, 0.2)
STEPS = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))


@dataclass(frozen=True)
class Recipe:
    """The post-processing parameters of the reference ``detect.py`` (its defaults)."""

    confidence_threshold: float = 0.02
    top_k: int = 5000
    nms_threshold: float = 0.4
    keep_top_k: int = 750


@dataclass(frozen=True)
class Backbone:
    """One released configuration: its ``cfg`` name, the width of the FPN input taps and of its output."""

    name: str
    weights: str  # the weights registry entry of the released checkpoint
    tap_channels: tuple[int, int, int]
    out_channels: int


BACKBONES = {
    "mobilenet0.25": Backbone("mobilenet0.25", "retinaface_mobilenet0_25", (64, 128, 256), 64),
    "resnet50": Backbone("Resnet50", "retinaface_resnet50", (512, 1024, 2048), 256),
}


def backbone_spec(name: str) -> Backbone:
    if name not in BACKBONES:
        raise TriptychError(f"unknown RetinaFace backbone {name!r}", fix=f"use one of: {', '.join(BACKBONES)}")
    return BACKBONES[name]


# --------------------------------------------------------------------------------------------------
# The network. Module names follow the released state dicts.

def _conv_bn(cin: int, cout: int, kernel: int, stride: int, slope: float | None, groups: int = 1) -> list[nn.Module]:
    """conv (no bias) + BatchNorm, then LeakyReLU(slope) unless ``slope`` is None."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    return layers + ([nn.LeakyReLU(slope, inplace=True)] if slope is not None else [])


def _depthwise_separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(*_conv_bn(cin, cin, 3, stride, 0.1, groups=cin), *_conv_bn(cin, cout, 1, 1, 0.1))


class MobileNetV1Body(nn.Module):
    """MobileNetV1 x0.25 up to its three taps (stage1, stage2, stage3: 64, 128, 256 channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(nn.Sequential(*_conv_bn(3, 8, 3, 2, 0.1)), _depthwise_separable(8, 16, 1),
                                    _depthwise_separable(16, 32, 2), _depthwise_separable(32, 32, 1),
                                    _depthwise_separable(32, 64, 2), _depthwise_separable(64, 64, 1))
        self.stage2 = nn.Sequential(_depthwise_separable(64, 128, 2),
                                    *[_depthwise_separable(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(_depthwise_separable(128, 256, 2), _depthwise_separable(256, 256, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return [c1, c2, self.stage3(c2)]


class ResNet50Body(nn.Module):
    """torchvision's ResNet-50 without avgpool and fc, tapped after layer2, layer3 and layer4."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import resnet50

        net = resnet50(weights=None)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(net, name))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        c2 = self.layer2(x)
        c3 = self.layer3(c2)
        return [c2, c3, self.layer4(c3)]


class FPN(nn.Module):
    """1x1 lateral convs; the coarser map is upsampled (nearest, to the finer map's size), added, and
    smoothed by a 3x3 conv, from the coarsest level down."""

    def __init__(self, taps: tuple[int, int, int], width: int, slope: float) -> None:
        super().__init__()
        self.output1, self.output2, self.output3 = (nn.Sequential(*_conv_bn(c, width, 1, 1, slope)) for c in taps)
        self.merge1 = nn.Sequential(*_conv_bn(width, width, 3, 1, slope))
        self.merge2 = nn.Sequential(*_conv_bn(width, width, 3, 1, slope))

    def forward(self, taps: list[torch.Tensor]) -> list[torch.Tensor]:
        p1, p2, p3 = self.output1(taps[0]), self.output2(taps[1]), self.output3(taps[2])
        p2 = self.merge2(p2 + F.interpolate(p3, size=p2.shape[2:], mode="nearest"))
        p1 = self.merge1(p1 + F.interpolate(p2, size=p1.shape[2:], mode="nearest"))
        return [p1, p2, p3]


class SSH(nn.Module):
    """Context module: 3x3 (C/2), 5x5 as two 3x3 (C/4) and 7x7 as three 3x3 (C/4), concatenated, ReLU."""

    def __init__(self, width: int, slope: float) -> None:
        super().__init__()
        half, quarter = width // 2, width // 4
        self.conv3X3 = nn.Sequential(*_conv_bn(width, half, 3, 1, None))
        self.conv5X5_1 = nn.Sequential(*_conv_bn(width, quarter, 3, 1, slope))
        self.conv5X5_2 = nn.Sequential(*_conv_bn(quarter, quarter, 3, 1, None))
        self.conv7X7_2 = nn.Sequential(*_conv_bn(quarter, quarter, 3, 1, slope))
        self.conv7x7_3 = nn.Sequential(*_conv_bn(quarter, quarter, 3, 1, None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5 = self.conv5X5_1(x)
        branch7 = self.conv7X7_2(branch5)
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(branch5), self.conv7x7_3(branch7)], dim=1))


class Head(nn.Module):
    """A 1x1 conv giving ``per_anchor`` values for each of the 2 anchors of every position, as rows
    ordered (y, x, anchor): [B, H*W*2, per_anchor]."""

    def __init__(self, width: int, per_anchor: int) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(width, 2 * per_anchor, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.per_anchor)


class RetinaFace(nn.Module):
    """Body, FPN, one SSH per level and the class / box / landmark heads; ``forward`` returns
    ``(loc [B,N,4], conf [B,N,2] softmax-ed, landms [B,N,10])`` as the reference does in test phase."""

    def __init__(self, backbone: str) -> None:
        super().__init__()
        spec = backbone_spec(backbone)
        slope = 0.1 if spec.out_channels <= 64 else 0.0  # the reference's rule for FPN and SSH
        self.body = MobileNetV1Body() if backbone == "mobilenet0.25" else ResNet50Body()
        self.fpn = FPN(spec.tap_channels, spec.out_channels, slope)
        self.ssh1, self.ssh2, self.ssh3 = (SSH(spec.out_channels, slope) for _ in range(3))
        self.ClassHead = nn.ModuleList(Head(spec.out_channels, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(Head(spec.out_channels, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(Head(spec.out_channels, 10) for _ in range(3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self.fpn(self.body(x))
        features = [self.ssh1(p[0]), self.ssh2(p[1]), self.ssh3(p[2])]

        def run(heads: nn.ModuleList) -> torch.Tensor:
            return torch.cat([head(f) for head, f in zip(heads, features)], dim=1)

        return run(self.BboxHead), F.softmax(run(self.ClassHead), dim=-1), run(self.LandmarkHead)


def strip_module_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    """The released checkpoints were saved from ``nn.DataParallel``: every key starts with ``module.``.
    A state dict with the prefix on every key loses it; one without it is returned as it is."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def load_retinaface(backbone: str, state: Mapping[str, torch.Tensor], where: str) -> RetinaFace:
    """A RetinaFace in eval mode with ``state`` loaded strictly; a state dict that does not fit names
    its missing / unexpected keys and the backbone it was checked against."""
    from triptych.weights import state_mismatch

    model = RetinaFace(backbone)
    state = strip_module_prefix(state)
    mismatch = state_mismatch(model.state_dict(), state)
    if mismatch:
        other = [b for b in BACKBONES if b != backbone][0]
        raise TriptychError(f"{where}: not a RetinaFace {backbone} state dict ({mismatch.describe()})",
                            fix=f"pass the {backbone} checkpoint, or --backbone {other} if the file is that one")
    model.load_state_dict(state, strict=True)
    return model.eval()


# --------------------------------------------------------------------------------------------------
# Priors, decoding, NMS (numpy / torch on CPU, float32 like the reference)

def prior_boxes(height: int, width: int) -> np.ndarray:
    """[N, 4] float32 anchors (cx, cy, w, h) normalised by the image size, in the heads' row order:
    stride 8, 16, 32; positions row by row; the level's two sizes. Computed in float64, stored as float32."""
    rows = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        fh, fw = -(-height // step), -(-width // step)
        for i in range(fh):
            for j in range(fw):
                for m in sizes:
                    rows.append(((j + 0.5) * step / width, (i + 0.5) * step / height, m / width, m / height))
    return np.asarray(rows, dtype=np.float64).astype(np.float32)


def decode(loc: np.ndarray, landms: np.ndarray, priors: np.ndarray, height: int, width: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes [N,4] (x1, y1, x2, y2) and landmarks [N,10] in pixels, float32, in the reference's operation
    order (x2 = x1 + w, not cx + w/2)."""
    p, loc_t, lm = torch.from_numpy(priors), torch.from_numpy(loc), torch.from_numpy(landms)
    centre = p[:, :2] + loc_t[:, :2] * VARIANCES[0] * p[:, 2:]
    size = p[:, 2:] * torch.exp(loc_t[:, 2:] * VARIANCES[1])
    top_left = centre - size / 2
    boxes = torch.cat([top_left, top_left + size], dim=1) * torch.tensor([width, height] * 2, dtype=torch.float32)
    points = torch.cat([p[:, :2] + lm[:, 2 * k:2 * k + 2] * VARIANCES[0] * p[:, 2:] for k in range(5)], dim=1)
    return boxes.numpy(), (points * torch.tensor([width, height] * 5, dtype=torch.float32)).numpy()


def descending(scores: np.ndarray) -> np.ndarray:
    """Indices by score, highest first; equal scores keep ascending index (stable)."""
    return np.argsort(-scores, kind="stable")


def nms(dets: np.ndarray, threshold: float) -> list[int]:
    """Greedy NMS over rows [x1, y1, x2, y2, score] (float32) with areas (x2 - x1 + 1) * (y2 - y1 + 1):
    a box survives the current best only with IoU <= ``threshold``. Returns kept row indices in order."""
    x1, y1, x2, y2, scores = (dets[:, c] for c in range(5))
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = descending(scores)
    keep = []
    while order.size > 0:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        order = rest[inter / (areas[i] + areas[rest] - inter) <= threshold]
    return keep


def postprocess(loc: np.ndarray, conf: np.ndarray, landms: np.ndarray, priors: np.ndarray, height: int, width: int,
                recipe: Recipe = Recipe()) -> tuple[np.ndarray, np.ndarray]:
    """The reference's post-processing of one image's raw outputs ([N,4], [N,2], [N,10]): detections
    [K, 15] float32 (x1, y1, x2, y2, score, 5 x (x, y)) in pixels, and the prior index of each row."""
    boxes, points = decode(loc, landms, priors, height, width)
    scores = conf[:, 1]
    index = np.flatnonzero(scores > recipe.confidence_threshold)
    index = index[descending(scores[index])][:recipe.top_k]
    dets = np.hstack([boxes[index], scores[index, None]]).astype(np.float32, copy=False)
    keep = nms(dets, recipe.nms_threshold)[:recipe.keep_top_k]
    return np.hstack([dets[keep], points[index[keep]]]).astype(np.float32), index[keep].astype(np.int64)


def preprocess(bgr: np.ndarray) -> torch.Tensor:
    """uint8 BGR (H, W, 3) -> float32 [1, 3, H, W] minus the BGR means; no scaling, no resize."""
    return torch.from_numpy(np.ascontiguousarray(bgr, dtype=np.float32) - np.float32(MEAN_BGR)).permute(2, 0, 1)[None]


@dataclass(frozen=True)
class RawOutputs:
    """One image's network outputs, shaped as the reference returns them: [1,N,4], [1,N,2], [1,N,10]."""

    loc: np.ndarray
    conf: np.ndarray
    landms: np.ndarray


class RetinaFaceDetector:
    """A loaded RetinaFace on a device: raw outputs and recipe detections of uint8 RGB images."""

    def __init__(self, model: RetinaFace, backbone: str, weights: dict[str, Any], device: str = "cpu",
                 recipe: Recipe = Recipe()) -> None:
        from triptych.vision.hf_folder import torch_device

        self.model = model.to(torch_device(device)).eval()
        self.backbone = backbone
        self.weights = weights
        self.device = device
        self.recipe = recipe

    def raw(self, rgb: np.ndarray) -> RawOutputs:
        with torch.no_grad():
            loc, conf, landms = self.model(preprocess(rgb[:, :, ::-1]).to(self.device))
        return RawOutputs(loc.cpu().numpy(), conf.cpu().numpy(), landms.cpu().numpy())

    def detections(self, out: RawOutputs, height: int, width: int) -> np.ndarray:
        """[K, 15] recipe detections from one image's raw outputs, in its pixels."""
        return postprocess(out.loc[0], out.conf[0], out.landms[0], prior_boxes(height, width), height, width,
                           self.recipe)[0]

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        """[K, 15] recipe detections of one uint8 RGB image, in its pixels."""
        return self.detections(self.raw(rgb), *rgb.shape[:2])


def retinaface_detector(backbone: str = "mobilenet0.25", weights_file: str | Path | None = None,
                        device: str = "cpu") -> RetinaFaceDetector:
    """The detector with a user file (``.pth`` with or without ``module.``, or ``.safetensors``) or, by
    default, the backbone's registered checkpoint (sha256-checked by ``triptych.weights``)."""
    from triptych import weights

    spec = backbone_spec(backbone)
    if weights_file is not None:
        record = weights.describe_user_file(weights_file)
        state = weights.load_state_dict(weights_file)
    else:
        record = weights.describe(spec.weights)
        state = weights.load(spec.weights)
    return RetinaFaceDetector(load_retinaface(backbone, state, record["path"]), backbone, record, device)
