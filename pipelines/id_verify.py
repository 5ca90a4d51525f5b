"""DVC stage ``id_verify``: identity verification inside each identity's group of face boxes.

docs/protocols/personalization.md step 3: embed every face box of the group (ArcFace in the thesis); score each
box by the sum of its cosine similarities to all other boxes; in an image with several faces keep the
best-scoring box; recompute the scores over the kept boxes (one per image); with delta the standard
deviation of the group's scores, drop images more than ``k`` * delta below the group's mean
(``--deviation-factor``, 8 in the thesis; a high score is never a reason to drop).

A z-score over n values (population standard deviation) cannot exceed sqrt(n - 1) (Samuelson's
inequality), so k = 8 drops nothing in a group of fewer than 65 images; the stage log (and the dataset
card) reports, per group, n, sqrt(n - 1) and whether k can drop anything there. Both backends feed the
same rule (``verify_group``); only the embedder differs. Embeddings are cached per image content and box.

- ``light``: ``triptych.vision.face``'s dlib embedder (128-d, unit length).
- ``arcface`` (or ``heavy``): insightface's w600k_r50 through onnxruntime, the ``face_sim:arcface``
  embedder (512-d), on the 112x112 crop aligned from the detector's 5 landmarks to the ArcFace template
  (``align_arcface``); it needs a detector that gives landmarks (RetinaFace or dlib). The model is
  loaded once per worker process (``heavy_embedder``); ``--device cuda`` uses onnxruntime's CUDA provider.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from triptych.media import read_rgb
from triptych.errors import TriptychError
from triptych.pipelines.id_table import (Record, Table, compute_all, drop, image_path, load_previous, save, stage_cache,
                                         stage_parser)
from triptych.pipelines.stage_io import choose_backend, once_per_process, parse_stage_args, run_stage, timed
from triptych.vision.face import ARCFACE_RECOGNIZER, ArcFaceBackend, FaceBox, dlib_backend

STAGE = "id_verify"
VERSION = 1
HEAVY = "arcface"


def summed_similarity(embeddings: np.ndarray) -> np.ndarray:
    """Each row's summed cosine to every other row (rows are unit vectors).

    >>> summed_similarity(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])).tolist()
    [1.0, 1.0, 0.0]
    """
    sims = embeddings @ embeddings.T
    return sims.sum(axis=1) - np.diag(sims)


def z_scores(scores: np.ndarray) -> np.ndarray:
    """(s - mean) / std with the population std (ddof 0); all zeros when the std is 0 (n < 2 or all equal)."""
    std = float(scores.std()) if len(scores) else 0.0
    return (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)


def verify_group(records: list[Record], embeddings: list[list[np.ndarray]], factor: float) -> dict[str, Any]:
    """Choose each image's box, score, and drop the outliers of one identity; returns the group's report."""
    owners = [i for i, embs in enumerate(embeddings) for _ in embs]
    first = summed_similarity(np.array([e for embs in embeddings for e in embs])) if owners else np.zeros(0)
    best = []
    for i, record in enumerate(records):
        own = [k for k, o in enumerate(owners) if o == i]
        choice = max(range(len(own)), key=lambda j: (first[own[j]], -j))  # ties: the larger (earlier) box
        best.append(choice)
        face = record["faces"][choice]
        record.update(face_box=face["box"], face_score=face["score"], landmarks=face["landmarks"],
                      faces_valid=len(own))
    chosen = np.array([embeddings[i][best[i]] for i in range(len(records))])
    scores = summed_similarity(chosen)
    z = z_scores(scores)
    n = len(records)
    for record, s, zi in zip(records, scores, z):
        record["verification_score"] = float(s)
        record["verification_z"] = float(zi)
        if zi < -factor:
            drop(record, STAGE, f"verification score {s:.4f} is {-zi:.2f} std below the identity's mean (> {factor:g})")
    bound = math.sqrt(n - 1) if n > 1 else 0.0
    return {"n": n, "mean": float(scores.mean()), "std": float(scores.std()), "max_possible_z": bound,
            "factor_can_drop": factor < bound, "dropped": int(sum(z < -factor))}


@once_per_process
def heavy_embedder(recognizer: str, device: str) -> ArcFaceBackend:
    """The ArcFace recognizer (a weights registry name), loaded once per process (each Ray worker keeps its own)."""
    from triptych import weights

    return ArcFaceBackend(weights.describe(recognizer), None, device)


def embed_face(path: Any, box: list[float], score: float, landmarks: list[list[float]] | None = None,
               backend: str = "light", recognizer: str = ARCFACE_RECOGNIZER, device: str = "cpu") -> list[float]:
    """The embedding of one face box of an image (the per-image work an executor runs)."""
    if backend == "light":
        return dlib_backend().embed(read_rgb(path), FaceBox(*box, score)).tolist()
    if not landmarks or len(landmarks) != 5:
        raise TriptychError(f"{path}: the arcface backend aligns faces by 5 landmarks, and this face box has none",
                            fix="detect with a backend that gives 5 landmarks (id_detect --backend retinaface)")
    face = FaceBox(*box, score, tuple(tuple(p) for p in landmarks))
    return heavy_embedder(recognizer, device).embed(read_rgb(path), face).tolist()


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(STAGE, __doc__)
    parser.add_argument("--deviation-factor", type=float, default=8.0, help="k: drop below mean - k * std")
    parser.add_argument("--recognizer", default=ARCFACE_RECOGNIZER,
                        help="arcface: the weights registry name of the ONNX recognizer (same interface as w600k_r50)")
    parser.add_argument("--device", default="cpu", help="arcface: cpu | cuda")
    args = parse_stage_args(parser, argv)
    backend = choose_backend(STAGE, args.backend, HEAVY)
    with timed(STAGE, args.timing) as timing:
        table: Table = load_previous(args.out, STAGE)
        if backend == "light":
            cache = stage_cache(args, STAGE, VERSION, embedder="dlib-resnet-v1", jitters=0)
            label, files = "light: dlib ResNet 128-d (triptych.vision.face, variant dlib)", dlib_backend().weights
        else:
            from triptych import weights as registry

            files = [registry.describe(args.recognizer)]  # the model loads where the faces are embedded
            label = "arcface: insightface w600k_r50 512-d on 5-point aligned 112x112 crops (onnxruntime)"
            cache = stage_cache(args, STAGE, VERSION, embedder=f"arcface-{args.recognizer}",
                                weights=[w["sha256"] for w in files])
        groups = table.groups()
        jobs = [(r["sha256"], f["box"], embed_face,
                 (image_path(table, r), f["box"], f["score"], f["landmarks"], backend, args.recognizer,
                  args.device))
                for records in groups.values() for r in records for f in r["faces"]]
        vectors = iter(compute_all(cache, args, jobs, unit="faces"))  # in job order: identity, record, face
        reports = {}
        for identity, records in groups.items():
            embeddings = [[np.asarray(next(vectors)) for _ in record["faces"]] for record in records]
            timing.items += len(records)
            reports[identity] = verify_group(records, embeddings, args.deviation_factor)
        timing.count(cache)
        weights = [{k: w[k] for k in ("name", "sha256")} for w in files] if cache.misses or groups else []
        table.log(STAGE, label,
                  {"backend": args.backend, "deviation_factor": args.deviation_factor}, groups=reports, weights=weights)
        save(table, args.out, STAGE)
    for identity, report in reports.items():
        note = "" if report["factor_can_drop"] else f" (k={args.deviation_factor:g} >= sqrt(n-1): cannot drop here)"
        print(f"{STAGE}: {identity}: n={report['n']}, dropped {report['dropped']}{note}")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
