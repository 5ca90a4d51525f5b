"""DVC stage ``id_detect``: face boxes (and landmarks where the detector gives them) of every kept image.

protocols.md section 3, step 2: detect faces (RetinaFace in the thesis); drop boxes smaller than
256x256 (``--min-face-size``: a box is kept when its width and height both reach it); drop images
without a valid box. The light backend is ``triptych.metrics.face``'s dlib backend (HOG detector, the
same one face similarity uses, with its 5-point landmarks). Detection is cached per image content; the
size threshold is applied after the cache, so changing it never re-detects.
"""

from __future__ import annotations

from typing import Any

from triptych.media import read_rgb
from triptych.metrics.face import dlib_backend
from triptych.pipelines.id_table import (Table, compute_all, drop, image_path, load_previous, save, stage_cache,
                                         stage_parser)
from triptych.pipelines.stage_io import check_backend, run_stage, timed

STAGE = "id_detect"
VERSION = 2  # 2: landmarks from dlib's 5-point shape predictor
HEAVY = {"retinaface": ("insightface and onnxruntime (pip install insightface onnxruntime)", "scrfd_det_10g")}


def detect_boxes(path: Any) -> list[dict[str, Any]]:
    """Every face box of the image (dlib backend), largest first, in the image's pixel coordinates."""
    boxes = dlib_backend().detect(read_rgb(path))
    boxes = sorted(boxes, key=lambda b: (-b.area, -b.score))
    return [{"box": [b.left, b.top, b.right, b.bottom], "score": b.score,
             "landmarks": [list(p) for p in b.landmarks] if b.landmarks else None} for b in boxes]


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(STAGE, __doc__)
    parser.add_argument("--min-face-size", type=int, default=256, help="minimum box width and height, px")
    args = parser.parse_args(argv)
    check_backend(STAGE, args.backend, HEAVY)
    with timed(STAGE, args.timing) as timing:
        table: Table = load_previous(args.out, STAGE)
        cache = stage_cache(args, STAGE, VERSION, detector="dlib-hog", upsample=1)
        kept = table.kept()
        detections = compute_all(cache, args, [(r["sha256"], None, detect_boxes, (image_path(table, r),)) for r in kept])
        for record, faces in zip(kept, detections):
            valid = [f for f in faces if min(f["box"][2] - f["box"][0], f["box"][3] - f["box"][1]) >= args.min_face_size]
            record["faces_detected"] = len(faces)
            record["faces"] = valid
            if not faces:
                drop(record, STAGE, "no face detected")
            elif not valid:
                w, h = faces[0]["box"][2] - faces[0]["box"][0], faces[0]["box"][3] - faces[0]["box"][1]
                drop(record, STAGE, f"largest face {w:.0f}x{h:.0f} < {args.min_face_size}x{args.min_face_size}")
            timing.items += 1
        timing.computed, timing.cached = cache.misses, cache.hits
        table.log(STAGE, "light: dlib HOG (triptych.metrics.face, variant dlib)",
                  {"backend": args.backend, "min_face_size": args.min_face_size})
        save(table, args.out, STAGE)
    print(f"{STAGE}: {len(table.kept())} of {len(table.records)} images kept")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
