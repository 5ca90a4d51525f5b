"""Small ONNX face models with the interfaces of insightface's files, exported from torch networks filled by the
weights rule (docs/weights_rule.md), and SCRFD's decoding written out by hand as the known answer.

- ``TinyRecognizer``: ArcFace's interface (1x3x112x112 -> 512), as w600k_r50.onnx / glintr100.onnx.
- ``TinyScrfd``: SCRFD's interface with keypoints (det_10g.onnx / scrfd_10g_bnkps.onnx): input (1, 3, H, W)
  with H and W free; 9 outputs, the scores (K, 1), the box distances (K, 4) and the 5 landmark offsets (K, 10)
  of strides 8, 16 and 32, K = (H / s) * (W / s) * 2 anchors, rows ordered by (y, x, anchor); distances are in
  units of the stride.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from triptych.weights_rule import apply_weights_rule, rule_state_dict

STRIDES = (8, 16, 32)
ANCHORS = 2
SCRFD_SIZE = (640, 640)
SCRFD_NMS = 0.4  # SCRFD.nms_thresh
FACES_KEPT = 6  # the score heads are shifted so that at least this many anchors pass 0.5 on each tuning image


class TinyRecognizer(nn.Module):
    """ArcFace's interface in a few thousand weights: strided conv, ReLU, linear to 512."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=16, stride=16)
        self.fc = nn.Linear(4 * 7 * 7, 512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def export_tiny_recognizer(path: Path, seed: int = 18) -> TinyRecognizer:
    model = TinyRecognizer()
    model.load_state_dict(rule_state_dict(model, seed=seed, gain=1.0))
    torch.onnx.export(model.eval(), torch.zeros(1, 3, 112, 112), str(path), input_names=["input.1"],
                      output_names=["embedding"], opset_version=13, dynamo=False)
    return model


class TinyScrfd(nn.Module):
    """SCRFD's outputs from three strided convolutions (strides 8, 16, 32) and 1x1 heads per stride."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.ModuleList([nn.Conv2d(3, 8, 8, 8), nn.Conv2d(8, 8, 2, 2), nn.Conv2d(8, 8, 2, 2)])
        self.score = nn.ModuleList(nn.Conv2d(8, ANCHORS, 1) for _ in STRIDES)
        self.bbox = nn.ModuleList(nn.Conv2d(8, ANCHORS * 4, 1) for _ in STRIDES)
        self.kps = nn.ModuleList(nn.Conv2d(8, ANCHORS * 10, 1) for _ in STRIDES)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for conv in self.stem:
            x = torch.relu(conv(x))
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        def rows(t: torch.Tensor, width: int) -> torch.Tensor:
            return t.permute(0, 2, 3, 1).reshape(-1, width)

        feats = self.features(x)
        scores = [rows(torch.sigmoid(head(f)), 1) for head, f in zip(self.score, feats)]
        boxes = [rows(torch.exp(0.5 * head(f)), 4) for head, f in zip(self.bbox, feats)]
        points = [rows(head(f), 10) for head, f in zip(self.kps, feats)]
        return (*scores, *boxes, *points)


def scrfd_input(image: np.ndarray, size: tuple[int, int] = SCRFD_SIZE) -> tuple[torch.Tensor, float]:
    """SCRFD's input: the RGB image resized (cv2 bilinear) to fit ``size`` keeping its aspect, pasted top-left on
    black, as (x - 127.5) / 128 NCHW; and the resize factor."""
    height, width = image.shape[:2]
    if height / width > size[1] / size[0]:
        new_h, new_w = size[1], int(size[1] / (height / width))
    else:
        new_w, new_h = size[0], int(size[0] * (height / width))
    canvas = np.zeros((size[1], size[0], 3), np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h))
    blob = (canvas.astype(np.float32) - 127.5) / 128.0
    return torch.from_numpy(blob).permute(2, 0, 1)[None].contiguous(), new_h / height


def export_tiny_scrfd(path: Path, tuned_on: Sequence[np.ndarray], seed: int = 23, blind: bool = False) -> TinyScrfd:
    """The weights rule, then every score bias shifted so that at least ``FACES_KEPT`` anchors of each image in
    ``tuned_on`` score above 0.5 (exactly that many for the image that scores lowest), or, ``blind``, so far down
    that nothing ever does; exported with free H and W, as SCRFD's files are."""
    model = TinyScrfd().eval()
    apply_weights_rule(model, seed, 1.0)
    with torch.no_grad():
        def kth_logits(image: np.ndarray) -> torch.Tensor:
            feats = model.features(scrfd_input(image)[0])
            logits = torch.cat([head(f).flatten() for head, f in zip(model.score, feats)])
            return logits.sort(descending=True).values[FACES_KEPT - 1:FACES_KEPT + 1].mean()

        threshold = min(kth_logits(image) for image in tuned_on) + (1e4 if blind else 0.0)
        for head in model.score:
            head.bias -= threshold
    torch.onnx.export(model, torch.zeros(1, 3, *SCRFD_SIZE), str(path), input_names=["input.1"],
                      output_names=[f"{kind}_{s}" for kind in ("score", "bbox", "kps") for s in STRIDES],
                      dynamic_axes={"input.1": {2: "height", 3: "width"}}, opset_version=13, dynamo=False)
    return model


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union with SCRFD's +1 pixel convention."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    area = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return float(inter / (area - inter))


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = SCRFD_NMS) -> list[int]:
    """Greedy NMS, highest score first: a box is kept unless it overlaps a kept one by more than ``threshold``."""
    keep: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if all(_overlap(boxes[i], boxes[j]) <= threshold for j in keep):
            keep.append(int(i))
    return keep


def decode_scrfd(model: TinyScrfd, image: np.ndarray, threshold: float = 0.5,
                 size: tuple[int, int] = SCRFD_SIZE) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """SCRFD's detections by hand: anchor centres (x, y) * stride, 2 per cell; box = centre -/+ distance *
    stride (left, top, right, bottom); landmark = centre + offset * stride; scores >= threshold; NMS 0.4;
    coordinates divided by the resize factor. (box, score, landmarks (5, 2)) in original pixels, best first."""
    blob, scale = scrfd_input(image, size)
    with torch.no_grad():
        outputs = [o.numpy().astype(np.float64) for o in model(blob)]
    boxes, scores, points = [], [], []
    for k, stride in enumerate(STRIDES):
        h, w = size[1] // stride, size[0] // stride
        ys, xs = np.mgrid[:h, :w]
        centres = np.repeat(np.stack([xs, ys], -1).reshape(-1, 2) * stride, ANCHORS, axis=0).astype(np.float64)
        score, dist, offset = outputs[k][:, 0], outputs[3 + k] * stride, outputs[6 + k] * stride
        keep = score >= threshold
        boxes.append(np.concatenate([centres - dist[:, :2], centres + dist[:, 2:]], 1)[keep])
        points.append((np.tile(centres, 5) + offset).reshape(-1, 5, 2)[keep])
        scores.append(score[keep])
    all_boxes, all_scores, all_points = np.concatenate(boxes), np.concatenate(scores), np.concatenate(points)
    return [(all_boxes[i] / scale, float(all_scores[i]), all_points[i] / scale)
            for i in _nms(all_boxes, all_scores)]
