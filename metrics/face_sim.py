"""Face similarity, the metric (docs/protocols/personalization.md, "Metrics"): the identity's faces compared.

Detect and crop the face, embed it, and take the cosine to the identity's real faces. The face models
themselves (detectors, embedders, alignment, the embedding cache) are the shared face toolkit,
``triptych/vision/face.py``; each backend here is a named metric variant
(``metrics/specs/personalization.yaml``), and ``FaceBackend.weights`` records the files used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from triptych.errors import TriptychError
from triptych.vision.face import (EmbeddingCache, FaceBackend, ImageLike, arcface_backend, cosine, dlib_backend,
                                  facenet_backend)


def face_similarity(generated: ImageLike, references: Sequence[ImageLike], backend: FaceBackend, *,
                    name: str | None = None, reference_names: Sequence[str] | None = None,
                    cache: EmbeddingCache | None = None) -> float:
    """Mean cosine between the generated image's largest face and the largest face of each reference.

    docs/protocols/personalization.md: "cosine to the ID's real faces", here averaged over the references.
    The result is the raw cosine in [-1, 1], not x100. The thesis tables print x100, and that
    scale is applied when the reported rows are loaded. Reference embeddings are computed once per
    call, or once per run when a ``cache`` is passed.
    """
    if len(references) == 0:
        raise TriptychError(f"{name or 'image'}: face similarity needs at least one reference image",
                            fix="pass the identity's reference photos")
    if reference_names is not None and len(reference_names) != len(references):
        raise TriptychError("reference_names must name every reference image")
    cache = cache if cache is not None else EmbeddingCache()
    target = cache.embedding(generated, backend, name)
    values = []
    for i, reference in enumerate(references):
        ref_name = reference_names[i] if reference_names is not None else None
        if ref_name is None and not isinstance(reference, (str, Path)):
            ref_name = f"reference image {i}"
        values.append(cosine(target, cache.embedding(reference, backend, ref_name)))
    return float(np.mean(values))


def face_similarity_dlib(generated: ImageLike, references: Sequence[ImageLike], **kwargs: Any) -> float:
    """Metric ``face_sim``, variant ``dlib``: ``face_similarity`` with the dlib backend (see ``DlibBackend``)."""
    return face_similarity(generated, references, dlib_backend(), **kwargs)


def face_similarity_arcface(generated: ImageLike, references: Sequence[ImageLike], *,
                            backend: FaceBackend | None = None, trunk: Path | None = None, **kwargs: Any) -> float:
    """Metric ``face_sim``, variant ``arcface``: ``face_similarity`` with ``ArcFaceBackend`` (SCRFD-10GF
    detection, 5-point alignment to the 112x112 ArcFace template, w600k_r50 embedding, cosine); ``trunk`` a
    user's ArcFace ONNX file in place of w600k_r50 (``arcface_backend``)."""
    return face_similarity(generated, references, backend or arcface_backend(trunk), **kwargs)


def face_similarity_facenet(generated: ImageLike, references: Sequence[ImageLike], *,
                            backend: FaceBackend | None = None, trunk: Path | None = None, **kwargs: Any) -> float:
    """Metric ``face_sim``, variant ``facenet``: ``face_similarity`` with ``FaceNetBackend`` (MTCNN box crop
    to 160x160, InceptionResnetV1 VGGFace2 embedding, cosine); ``trunk`` a user's InceptionResnetV1 file."""
    return face_similarity(generated, references, backend or facenet_backend(trunk), **kwargs)


def face_distance_arcface(generated: ImageLike, references: Sequence[ImageLike], *,
                          backend: FaceBackend | None = None, trunk: Path | None = None, **kwargs: Any) -> float:
    """Metric ``face_dist``, variant ``arcface``: 1 - the ``arcface`` face similarity, i.e. the mean cosine
    distance to the references (deepface's ``cosine`` distance, 1 - cos; lower is better), in [0, 2]."""
    return 1.0 - face_similarity_arcface(generated, references, backend=backend, trunk=trunk, **kwargs)
