"""``triptych faces IMAGE... --backend retinaface|dlib|scrfd [--backbone B] [--weights FILE] [--json] [--raw-npy DIR]``

Detects the faces of each image and prints, per image, rows ``[x1, y1, x2, y2, score, 10 landmark
coordinates]`` in the image's pixels. RetinaFace rows are the reference inference recipe's output
(docs/retinaface.md); ``--raw-npy DIR`` also writes its raw outputs ``DIR/<stem>/{loc,conf,landms}.npy``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer


def write_raw(folder: Path, raw: Any) -> None:
    """The network's raw outputs of one image as ``loc.npy`` [1,N,4], ``conf.npy`` [1,N,2], ``landms.npy`` [1,N,10]."""
    import numpy as np

    from triptych.atomic import atomic_write

    def saver(array: Any) -> Any:
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.save(handle, array)
        return write

    for name in ("loc", "conf", "landms"):
        atomic_write(folder / f"{name}.npy", saver(getattr(raw, name)))


def detect_faces(images: List[Path], backend: str, backbone: str, weights: Optional[Path], device: str,
                 min_score: float, raw_npy: Optional[Path]) -> dict[str, Any]:
    """The detections of every image, with the detector's name and weights records."""
    from triptych.errors import InputError
    from triptych.media import read_rgb
    from triptych.vision.face import RetinaFaceBoxes, detection_rows, face_detector

    stems = [p.stem for p in images]
    if raw_npy is not None:
        if backend != "retinaface":
            raise InputError(f"--raw-npy: the {backend} backend has no raw network outputs to write",
                             fix="use --raw-npy with --backend retinaface")
        twice = sorted({s for s in stems if stems.count(s) > 1})
        if twice:
            raise InputError(f"--raw-npy: two images share the stem {twice[0]!r}, so their raw outputs would "
                             "overwrite each other", fix="run the images with equal names separately")
    detector = face_detector(backend, backbone, weights, device, min_score)
    results = []
    for path in images:
        rgb = read_rgb(path)
        if raw_npy is not None and isinstance(detector, RetinaFaceBoxes):
            raw = detector.detector.raw(rgb)
            write_raw(raw_npy / path.stem, raw)
            boxes = detector.boxes(detector.detector.detections(raw, *rgb.shape[:2]))
        else:
            boxes = detector.detect(rgb)
        results.append({"image": str(path), "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
                        "faces": detection_rows(boxes)})
    return {"backend": backend, "backbone": backbone if backend == "retinaface" else None,
            "min_score": min_score, "weights": list(detector.weights), "images": results}


def faces_command(
    images: List[Path] = typer.Argument(..., help="image files"),
    backend: str = typer.Option("retinaface", "--backend", help="retinaface | dlib | scrfd"),
    backbone: str = typer.Option("mobilenet0.25", "--backbone", help="RetinaFace: mobilenet0.25 | resnet50"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="RetinaFace checkpoint (.pth, .safetensors) "
                                           "instead of the registered one"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda (RetinaFace)"),
    min_score: float = typer.Option(0.0, "--min-score", help="drop rows below this score (0: the full recipe)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON on stdout"),
    raw_npy: Optional[Path] = typer.Option(None, "--raw-npy", help="RetinaFace: write DIR/<stem>/{loc,conf,landms}.npy"),
) -> None:
    """Face boxes, scores and 5 landmarks of each image."""
    report = detect_faces(images, backend, backbone, weights, device, min_score, raw_npy)
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    for image in report["images"]:
        sys.stdout.write(f"{image['image']}\t{len(image['faces'])} face(s)\n")
        for row in image["faces"]:
            sys.stdout.write("\t" + " ".join("null" if v is None else f"{v:.3f}" for v in row) + "\n")


def register(app: typer.Typer) -> None:
    app.command("faces")(faces_command)
