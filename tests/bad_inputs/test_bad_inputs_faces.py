"""Bad inputs of ``triptych faces`` (docs/bad_inputs.md, section "Face detection"): each gets exit status 2,
an error naming the file or value, its fix, and an empty stdout. RetinaFace checkpoints are built by the
weights rule (docs/weights_rule.md) and saved as the released files are (keys with ``module.``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bad_input_cases import SAMPLE, Case, _garbage

IMAGE = SAMPLE / "portraits/newton_man/newton_0.jpg"


def _mnet_file(tmp: Path) -> Path:
    from triptych.vision.retinaface import RetinaFace
    from triptych.weights_rule import apply_weights_rule

    model = RetinaFace("mobilenet0.25")
    apply_weights_rule(model, seed=501, gain=1.0)
    path = tmp / "mobilenet0.25_Final.pth"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)
    return path


def _corrupt_image(tmp: Path) -> list:
    _garbage(tmp / "face.png")
    return ["faces", tmp / "face.png", "--weights", _mnet_file(tmp)]


CASES = [
    Case("faces-weights-of-the-other-backbone",
         lambda t: ["faces", IMAGE, "--backbone", "resnet50", "--weights", _mnet_file(t)],
         ("not a RetinaFace resnet50 state dict", "--backbone mobilenet0.25")),
    Case("faces-unknown-backbone", lambda t: ["faces", IMAGE, "--backbone", "resnet18"],
         ("'resnet18'", "mobilenet0.25, resnet50")),
    Case("faces-unknown-backend", lambda t: ["faces", IMAGE, "--backend", "mtcnn"], ("'mtcnn'", "retinaface, dlib, scrfd")),
    Case("faces-registered-weights-missing", lambda t: ["faces", IMAGE, "--backbone", "resnet50"],
         ("Resnet50_Final.pth", "triptych weights import retinaface_resnet50")),
    Case("faces-weights-for-dlib", lambda t: ["faces", IMAGE, "--backend", "dlib", "--weights", _mnet_file(t)],
         ("--weights applies to the retinaface backend",)),
    Case("faces-raw-npy-without-retinaface", lambda t: ["faces", IMAGE, "--backend", "dlib", "--raw-npy", t / "raw"],
         ("--raw-npy", "--backend retinaface")),
    Case("faces-raw-npy-same-stem", lambda t: ["faces", IMAGE, SAMPLE / "portraits/newton_man/newton_0.jpg",
                                               "--raw-npy", t / "raw"], ("'newton_0'", "separately")),
    Case("faces-corrupt-image", _corrupt_image, ("face.png", "cannot decode")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_faces_bad_input_gets_a_clear_error(case, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIPTYCH_OFFLINE", "1")
    code, out, err = run_cli(*case.setup(tmp_path))
    assert code == 2, err
    assert out == ""
    for expected in case.expect:
        assert expected in err, f"{expected!r} not in:\n{err}"
