"""PhotoMaker v2's face input: the raw ArcFace embedding of each reference photo, computed as the reference's
v2 scripts compute it (TencentARC/PhotoMaker @ 060b4fc: ``inference_scripts/inference_pmv2.py``,
``gradio_demo/app_v2.py``, ``photomaker/insightface_package.py``):

- insightface ``FaceAnalysis`` with the ``antelopev2`` pack, modules detection and recognition:
  ``scrfd_10g_bnkps.onnx`` (SCRFD-10GF with 5 landmarks; threshold 0.5, NMS 0.4) and ``glintr100.onnx``
  (ArcFace ResNet-100, Glint360K, 512-d). Weights entries ``antelopev2_scrfd_10g`` and ``antelopev2_glintr100``
  (insightface model zoo: non-commercial research use only). Both files are read by insightface's own
  ``model_zoo`` classes (``triptych.vision.face.insightface_model``);
- the photo goes in as BGR uint8, ``np.array(load_image(path))[:, :, ::-1]``;
- ``analyze_faces``: detection at 640x640, and while it finds nothing, again at 640, 576, 512, 448, 384, 320
  and 256 (``FaceAnalysis2`` sets the detection size per call);
- ``faces[0]['embedding']``: the first face insightface returns (the highest detection score after NMS), its
  112x112 crop aligned on the 5 landmarks, embedded by ``ArcFaceONNX``: raw, not L2-normalised.

A reference photo without a face: the reference scripts leave it out of the ID embeddings while still passing it
to the CLIP tower, so the two counts disagree; here it is an error naming the photo's size.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from triptych.vision.face import ArcFaceBackend, NoFaceError, ScrfdDetector, to_uint8_rgb

ANTELOPEV2_DETECTOR = "antelopev2_scrfd_10g"
ANTELOPEV2_RECOGNIZER = "antelopev2_glintr100"
ANTELOPEV2_WEIGHTS = (ANTELOPEV2_DETECTOR, ANTELOPEV2_RECOGNIZER)
# analyze_faces: the prepared 640, then range(640, 256, -64), then 256
DETECTION_SIZES = ((640, 640), *((s, s) for s in range(640, 256, -64)), (256, 256))


class AntelopeFaceEmbedder:
    """Reference photo (3, H, W) float in [0, 1] (or uint8 (H, W, 3) RGB) -> float32 (512,): insightface's
    ``faces[0]['embedding']`` of the antelopev2 pack, the ``face_embedder`` of ``PhotoMakerGenerator`` v2."""

    def __init__(self, detector: dict[str, Any], recognizer: dict[str, Any], device: str = "cpu") -> None:
        self.detector = ScrfdDetector(detector, device)
        self.recognizer = ArcFaceBackend(recognizer, None, device)
        self.weights: tuple[dict[str, Any], ...] = (*self.detector.weights, *self.recognizer.weights)

    def __call__(self, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        array = to_uint8_rgb(image, "PhotoMaker v2 reference photo")
        for size in DETECTION_SIZES:
            faces = self.detector.detect(array, input_size=size)
            if faces:
                return torch.from_numpy(self.recognizer.raw_embedding(array, faces[0]))
        height, width = array.shape[:2]
        raise NoFaceError(f"PhotoMaker v2: no face found in a reference photo ({width}x{height} WxH) by antelopev2's "
                          "SCRFD at any detection size (640 down to 256)",
                          fix="PhotoMaker v2 needs a visible face in every reference photo; leave this one out")


@functools.lru_cache(maxsize=2)
def antelopev2_embedder(device: str = "cpu") -> AntelopeFaceEmbedder:
    """The registry's antelopev2 files (sha256-checked by ``triptych.weights``), loaded once per process."""
    from triptych import weights

    return AntelopeFaceEmbedder(weights.describe(ANTELOPEV2_DETECTOR), weights.describe(ANTELOPEV2_RECOGNIZER), device)
