"""The ID pipeline's heavy backends with same-architecture random weights (docs/weights_rule.md).

ArcFace: an ONNX model exported from a small torch network with w600k_r50's interface (1x3x112x112 ->
512) runs through onnxruntime, on crops aligned from 5 landmarks, into the thesis' verification rule.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO
from triptych.media import read_rgb
from triptych.metrics import face
from triptych.weights_rule import rule_state_dict

PORTRAITS = REPO / "datasets/samples/portraits"


class TinyRecognizer(torch.nn.Module):
    """ArcFace's interface in a few thousand weights: strided conv, ReLU, linear to 512."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, kernel_size=16, stride=16)
        self.fc = torch.nn.Linear(4 * 7 * 7, 512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def export_tiny_recognizer(path: Path) -> TinyRecognizer:
    model = TinyRecognizer()
    model.load_state_dict(rule_state_dict(model, seed=18, gain=1.0))
    torch.onnx.export(model.eval(), torch.zeros(1, 3, 112, 112), str(path), input_names=["input.1"],
                      output_names=["embedding"], opset_version=13, dynamo=False)
    return model


def test_exported_recognizer_embeds_the_aligned_crop(tmp_path: Path) -> None:
    model = export_tiny_recognizer(tmp_path / "tiny.onnx")
    backend = face.ArcFaceBackend({"name": "tiny", "path": tmp_path / "tiny.onnx", "sha256": None}, None)
    image = read_rgb(PORTRAITS / "newton_man/newton_0.jpg")
    template = face.ARCFACE_TEMPLATE.astype(np.float64)
    # landmarks: the template scaled 4x and moved; the aligned crop must then be the region it came from
    points = template * 4 + [300, 200]
    box = face.FaceBox(300, 200, 748, 648, 0.9, tuple(map(tuple, points)))
    crop = backend.crop(image, box)
    region = np.asarray(torch.nn.functional.interpolate(
        torch.from_numpy(image[200:648, 300:748].astype(np.float32)).permute(2, 0, 1)[None], size=(112, 112),
        mode="area")[0].permute(1, 2, 0))
    assert np.abs(crop.astype(np.float32) - region).mean() < 12  # bilinear sampling of a 4x larger region
    with torch.no_grad():
        direct = model(torch.from_numpy((crop.astype(np.float32) - 127.5) / 127.5).permute(2, 0, 1)[None])[0].numpy()
    embedding = backend.embed(image, box)
    assert embedding.shape == (512,)
    assert np.allclose(embedding, direct / np.linalg.norm(direct), atol=1e-5)
