"""DVC stage ``id_detect``: face boxes and 5 landmarks of every kept image.

docs/protocols/personalization.md step 2: detect faces (RetinaFace in the thesis); drop boxes smaller than
256x256 (``--min-face-size``: a box is kept when its width and height both reach it); drop images
without a valid box. Detection is cached per image content; the size and score thresholds are applied
after the cache, so changing them never re-detects.

Backends (``--backend``):

- ``light``: ``triptych.vision.face``'s dlib backend (HOG detector, the one face similarity uses, with
  its 5-point shape-predictor landmarks).
- ``retinaface`` (or ``heavy``): the RetinaFace port (``triptych.vision.retinaface``, docs/retinaface.md)
  with the registered ``--backbone`` checkpoint, run at the image's own size as the reference recipe does
  (no resize); boxes below ``--min-score`` are dropped (the recipe's ``vis_thres`` is 0.6) and the
  ``--max-faces`` highest-scoring boxes that pass the size rule are kept. The model is loaded once per
  worker process (``heavy_detector``), never once per image; ``--device cuda`` runs it on the GPU.
"""

from __future__ import annotations

from typing import Any

from triptych.media import read_rgb
from triptych.pipelines.id_table import (Table, compute_all, drop, image_path, load_previous, save, stage_cache,
                                         stage_parser)
from triptych.pipelines.stage_io import choose_backend, once_per_process, parse_stage_args, run_stage, timed
from triptych.vision.face import FaceDetector, dlib_backend, face_detector

STAGE = "id_detect"
VERSION = 2  # 2: landmarks from dlib's 5-point shape predictor
HEAVY = "retinaface"


@once_per_process
def heavy_detector(backbone: str, device: str) -> FaceDetector:
    """RetinaFace with its registered checkpoint, loaded once per process (each Ray worker keeps its own)."""
    return face_detector("retinaface", backbone, device=device)


def detect_boxes(path: Any, backend: str = "light", backbone: str = "mobilenet0.25", device: str = "cpu"
                 ) -> list[dict[str, Any]]:
    """Every face box of the image, largest first (then higher score), in the image's pixel coordinates."""
    detector = dlib_backend() if backend == "light" else heavy_detector(backbone, device)
    boxes = sorted(detector.detect(read_rgb(path)), key=lambda b: (-b.area, -b.score))
    return [{"box": [b.left, b.top, b.right, b.bottom], "score": b.score,
             "landmarks": [list(p) for p in b.landmarks] if b.landmarks else None} for b in boxes]


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(STAGE, __doc__)
    parser.add_argument("--min-face-size", type=int, default=256, help="minimum box width and height, px")
    parser.add_argument("--backbone", default="mobilenet0.25", help="retinaface: mobilenet0.25 | resnet50")
    parser.add_argument("--min-score", type=float, default=0.6, help="retinaface: drop boxes scoring below it")
    parser.add_argument("--max-faces", type=int, default=5, help="retinaface: keep at most this many valid boxes")
    parser.add_argument("--device", default="cpu", help="retinaface: cpu | cuda")
    args = parse_stage_args(parser, argv)
    backend = choose_backend(STAGE, args.backend, HEAVY)
    with timed(STAGE, args.timing) as timing:
        table: Table = load_previous(args.out, STAGE)
        if backend == "light":
            cache = stage_cache(args, STAGE, VERSION, detector="dlib-hog", upsample=1)
            label = "light: dlib HOG (triptych.vision.face, variant dlib)"
            weights = [{k: w[k] for k in ("name", "sha256")} for w in dlib_backend().weights]
        else:
            from triptych import weights as registry
            from triptych.vision.retinaface import backbone_spec

            # the file's record only: the model itself is loaded where the images are (once per worker)
            weights = [{k: v for k, v in registry.describe(backbone_spec(args.backbone).weights).items()
                        if k in ("name", "sha256")}]
            cache = stage_cache(args, STAGE, VERSION, detector=f"retinaface-{args.backbone}", weights=weights)
            label = f"retinaface {args.backbone} (triptych.vision.retinaface, reference recipe)"
        kept = table.kept()
        detections = compute_all(cache, args, [(r["sha256"], None, detect_boxes,
                                                (image_path(table, r), backend, args.backbone, args.device))
                                               for r in kept])
        for record, faces in zip(kept, detections):
            if backend != "light":
                faces = [f for f in faces if f["score"] >= args.min_score]
            valid = [f for f in faces if min(f["box"][2] - f["box"][0], f["box"][3] - f["box"][1]) >= args.min_face_size]
            if backend != "light":
                valid = sorted(valid, key=lambda f: -f["score"])[:args.max_faces]
            record["faces_detected"] = len(faces)
            record["faces"] = valid
            if not faces:
                drop(record, STAGE, "no face detected")
            elif not valid:
                w, h = faces[0]["box"][2] - faces[0]["box"][0], faces[0]["box"][3] - faces[0]["box"][1]
                drop(record, STAGE, f"largest face {w:.0f}x{h:.0f} < {args.min_face_size}x{args.min_face_size}")
            timing.items += 1
        timing.count(cache)
        params = {"backend": args.backend, "min_face_size": args.min_face_size}
        if backend != "light":
            params.update(backbone=args.backbone, min_score=args.min_score, max_faces=args.max_faces)
        table.log(STAGE, label, params, weights=weights)
        save(table, args.out, STAGE)
    print(f"{STAGE}: {len(table.kept())} of {len(table.records)} images kept")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
