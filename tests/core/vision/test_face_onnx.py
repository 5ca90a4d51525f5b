"""The ``arcface`` face path (triptych/vision/face.py) on ONNX files with the interfaces of insightface's SCRFD and ArcFace
models (tests/face_onnx.py): insightface's own ``model_zoo.get_model`` routes them to its ``SCRFD`` and
``ArcFaceONNX`` classes, which run inside the backend. Known answers: SCRFD's decoding by hand from the torch
network's outputs, and the torch recognizer on the aligned crop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from face_onnx import ANCHORS, FACES_KEPT, decode_scrfd, export_tiny_recognizer, export_tiny_scrfd
from triptych.errors import TriptychError
from triptych.media import read_rgb
from triptych.metrics import face_sim
from triptych.vision import face

from conftest import REPO

pytest.importorskip("insightface")

PORTRAITS = REPO / "datasets/samples/portraits"
NEWTON = sorted((PORTRAITS / "newton_man").iterdir())


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    image = read_rgb(NEWTON[0])
    detector = export_tiny_scrfd(folder / "scrfd.onnx", [image])
    recognizer = export_tiny_recognizer(folder / "arcface.onnx")
    records = {name: {"name": f"tiny_{name}", "path": folder / f"{name}.onnx", "sha256": None}
               for name in ("scrfd", "arcface")}
    return image, detector, recognizer, records


def test_insightface_reads_the_exports_as_scrfd_and_arcface(exported):
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX
    from insightface.model_zoo.scrfd import SCRFD

    _, _, _, records = exported
    detector = face.insightface_model(records["scrfd"], "detection")
    recognizer = face.insightface_model(records["arcface"], "recognition")
    assert isinstance(detector, SCRFD) and isinstance(recognizer, ArcFaceONNX)
    assert detector.use_kps and detector.fmc == 3 and detector._num_anchors == ANCHORS
    assert list(detector._feat_stride_fpn) == [8, 16, 32]
    assert (recognizer.input_mean, recognizer.input_std, recognizer.input_size) == (127.5, 127.5, (112, 112))
    with pytest.raises(TriptychError, match="not as a recognition model"):
        face.insightface_model(records["scrfd"], "recognition")
    with pytest.raises(TriptychError, match="not as a detection model"):
        face.insightface_model(records["arcface"], "detection")


def test_scrfd_boxes_equal_the_decoding_by_hand(exported):
    image, detector, _, records = exported
    expected = decode_scrfd(detector, image)
    found = face.ScrfdDetector(records["scrfd"]).detect(image)
    assert 1 <= len(found) <= FACES_KEPT and len(found) == len(expected)
    for box, (xyxy, score, points) in zip(found, expected):
        assert np.allclose([box.left, box.top, box.right, box.bottom], xyxy, atol=1e-2)
        assert box.score == pytest.approx(score, abs=1e-5)
        assert np.allclose(np.asarray(box.landmarks), points, atol=1e-2)


def test_arcface_similarity_runs_through_both_exports(exported):
    image, detector, recognizer, records = exported
    backend = face.ArcFaceBackend(records["arcface"], records["scrfd"])
    xyxy, _, points = max(decode_scrfd(detector, image), key=lambda d: (d[0][2] - d[0][0]) * (d[0][3] - d[0][1]))
    box = face.detect_largest_face(image, backend)
    assert np.allclose([box.left, box.top, box.right, box.bottom], xyxy, atol=1e-2)
    assert np.allclose(np.asarray(box.landmarks), points, atol=1e-2)
    # the crop from the detector's own (float32) landmarks: sub-pixel moves of the points move the bilinear samples
    crop = face.align_arcface(image, np.asarray(box.landmarks, np.float32))[0]
    with torch.no_grad():
        direct = recognizer(torch.from_numpy((crop.astype(np.float32) - 127.5) / 127.5).permute(2, 0, 1)[None])[0]
    raw = direct.double().numpy()
    assert np.allclose(backend.raw_embedding(image, box), raw, atol=1e-4)  # insightface's unnormalised vector
    embedding = face.face_embedding(image, backend)
    assert embedding.shape == (512,) and np.allclose(embedding, raw / np.linalg.norm(raw), atol=1e-5)
    other = read_rgb(NEWTON[1])
    value = face_sim.face_similarity_arcface(image, [image, other], backend=backend)
    assert -1.0 <= value < 1.0 - 1e-6
    assert [w["name"] for w in backend.weights] == ["tiny_arcface", "tiny_scrfd"]


def test_antelopev2_files_are_trusted_only_from_the_published_archive(exported, tmp_path, monkeypatch):
    """The antelopev2 entries pin the release archive (no source gives the members' digests): a bare ONNX file is
    refused, and so is a zip with other bytes, naming the published digest."""
    import zipfile

    from triptych import weights

    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    _, _, _, records = exported
    spec = weights.get_spec("antelopev2_glintr100")
    assert spec.archive_member == "glintr100.onnx" and spec.urls[0].endswith("/v0.7/antelopev2.zip")
    assert "non-commercial" in spec.licence and weights.get_spec("antelopev2_scrfd_10g").archive_sha256 == spec.archive_sha256
    with pytest.raises(weights.UntrustedWeightsError, match="only the archive's sha256 is published"):
        weights.import_file("antelopev2_glintr100", records["arcface"]["path"])
    fake = tmp_path / "antelopev2.zip"
    with zipfile.ZipFile(fake, "w") as bundle:
        bundle.write(records["arcface"]["path"], "antelopev2/glintr100.onnx")
    with pytest.raises(weights.ChecksumMismatchError, match=spec.archive_sha256):
        weights.import_file("antelopev2_glintr100", fake)
    assert not weights.cache_path(spec).exists()
