"""DVC stage ``id_crop_mask``: a square crop around the face and a person mask inside it.

docs/protocols/personalization.md step 4: crop a larger square around the face so that the face covers more than
10% of the crop (``--min-face-fraction``); take person masks (Mask2Former panoptic 'person' in the
heavy backend); keep the mask that overlaps the face box most; drop images without a mask or without
overlap. The crop side is ``--crop-scale`` x the face box's longer side (3 gives ~11% coverage), clipped
to the image, centred on the face and shifted inside the image.

Light backend: OpenCV GrabCut seeded from the face box, on the crop resized to ``--work-size`` px:
the face box core is sure foreground, a person prior (the face box widened by half its width, down to
the crop's bottom) probable foreground, the rest probable background, the crop border outside the prior
sure background. Its connected components are the candidate masks. ``cv2.setRNGSeed(0)`` makes GrabCut's
k-means deterministic. The mask is stored in the crop's pixels as uncompressed COCO RLE
(``{"size": [h, w], "counts": [...]}``, column-major, starting with a run of 0).

Heavy backend ``mask2former`` (or ``heavy``): the COCO panoptic Mask2Former of ``triptych.vision.segmentation``
(registry entry ``--model``) on the same square crop; its ``person`` segments are the candidates, and the
one overlapping the face box most is kept (``--mask-threshold``: the class-probability threshold of the
panoptic post-processing). The model is loaded once per worker process; ``--device cuda`` runs it on the GPU.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from triptych.media import read_rgb
from triptych.pipelines.id_table import (Table, compute_all, drop, image_path, load_previous, save, stage_cache,
                                         stage_parser)
from triptych.pipelines.stage_io import choose_backend, once_per_process, parse_stage_args, run_stage, timed

STAGE = "id_crop_mask"
VERSION = 1
HEAVY = "mask2former"
MASK2FORMER = "mask2former_swin_large_coco_panoptic"


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO uncompressed RLE of a bool (H, W) mask: column-major runs, the first a run of 0s.

    >>> rle_encode(np.array([[0, 1], [0, 1]], bool))
    {'size': [2, 2], 'counts': [2, 2]}
    """
    flat = np.asarray(mask, bool).flatten(order="F")
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    h, w = rle["size"]
    values = np.concatenate([np.full(c, i % 2, bool) for i, c in enumerate(rle["counts"])]) if rle["counts"] else np.zeros(0, bool)
    return values.reshape((h, w), order="F")


def square_crop(box: list[float], width: int, height: int, scale: float) -> list[int]:
    """[x0, y0, x1, y1] of a square of side ``scale`` x the box's longer side (at most the image's shorter
    side), centred on the box and shifted to lie inside the image."""
    left, top, right, bottom = box
    side = min(int(round(scale * max(right - left, bottom - top))), width, height)
    x0 = int(round((left + right) / 2 - side / 2))
    y0 = int(round((top + bottom) / 2 - side / 2))
    x0, y0 = min(max(x0, 0), width - side), min(max(y0, 0), height - side)
    return [x0, y0, x0 + side, y0 + side]


def overlap(box: list[float], crop: list[int]) -> float:
    """Area of the face box inside the crop."""
    w = min(box[2], crop[2]) - max(box[0], crop[0])
    h = min(box[3], crop[3]) - max(box[1], crop[1])
    return max(w, 0.0) * max(h, 0.0)


def grabcut_person(crop: np.ndarray, face: list[float], work_size: int, iterations: int) -> np.ndarray:
    """Bool person mask of a square RGB crop, with ``face`` the face box in crop pixels."""
    side = crop.shape[0]
    s = work_size / side
    small = cv2.resize(crop, (work_size, work_size), interpolation=cv2.INTER_AREA)
    l, t, r, b = (int(round(v * s)) for v in face)
    fw, fh = r - l, b - t
    seed = np.full((work_size, work_size), cv2.GC_PR_BGD, np.uint8)
    px0, px1 = max(l - fw // 2, 0), min(r + fw // 2, work_size)
    py0 = max(t - fh // 4, 0)
    seed[py0:, px0:px1] = cv2.GC_PR_FGD
    border = np.zeros_like(seed, bool)
    border[:2, :], border[-2:, :], border[:, :2], border[:, -2:] = True, True, True, True
    seed[border & (seed == cv2.GC_PR_BGD)] = cv2.GC_BGD
    cx0, cy0, cx1, cy1 = l + fw // 5, t + fh // 5, r - fw // 5, b - fh // 5
    seed[max(cy0, 0):max(cy1, 0), max(cx0, 0):max(cx1, 0)] = cv2.GC_FGD
    cv2.setRNGSeed(0)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), seed, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    person = np.isin(seed, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    return cv2.resize(person, (side, side), interpolation=cv2.INTER_NEAREST).astype(bool)


def best_component(mask: np.ndarray, face: list[float]) -> tuple[np.ndarray | None, int]:
    """The connected component (8-connectivity) overlapping the face box most, and that overlap in px."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return None, 0
    l, t, r, b = (int(round(v)) for v in face)
    inside = labels[max(t, 0):max(b, 0), max(l, 0):max(r, 0)]
    hits = np.bincount(inside.ravel(), minlength=count)[1:]
    if not hits.size or hits.max() == 0:
        return None, 0
    label = int(hits.argmax()) + 1
    return labels == label, int(hits.max())


def most_overlapping(masks: list[np.ndarray], face: list[float]) -> tuple[np.ndarray | None, int]:
    """The mask with the most pixels inside the face box (ties: the first), and that count."""
    l, t, r, b = (int(round(v)) for v in face)
    hits = [int(m[max(t, 0):max(b, 0), max(l, 0):max(r, 0)].sum()) for m in masks]
    if not hits or max(hits) == 0:
        return None, 0
    best = int(np.argmax(hits))
    return masks[best], hits[best]


@once_per_process
def heavy_segmenter(model: str, device: str, threshold: float) -> Any:
    """The panoptic Mask2Former, loaded once per process (each Ray worker keeps its own)."""
    from triptych.vision.segmentation import PanopticPersons

    return PanopticPersons(model, device, threshold)


def crop_and_mask(path: Any, box: list[float], scale: float, work_size: int, iterations: int,
                  backend: str = "light", model: str = MASK2FORMER, device: str = "cpu",
                  threshold: float = 0.8) -> dict[str, Any]:
    image = read_rgb(path)
    crop_box = square_crop(box, image.shape[1], image.shape[0], scale)
    x0, y0, x1, y1 = crop_box
    face = [box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0]
    crop = image[y0:y1, x0:x1]
    if backend == "light":
        mask, hits = best_component(grabcut_person(crop, face, work_size, iterations), face)
    else:
        mask, hits = most_overlapping(heavy_segmenter(model, device, threshold).masks(crop), face)
    return {"crop_box": crop_box, "mask_rle": rle_encode(mask) if mask is not None else None,
            "mask_face_overlap_px": hits, "mask_area_px": int(mask.sum()) if mask is not None else 0}


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(STAGE, __doc__)
    parser.add_argument("--crop-scale", type=float, default=3.0, help="crop side / face box longer side")
    parser.add_argument("--min-face-fraction", type=float, default=0.1, help="face area / crop area must exceed it")
    parser.add_argument("--work-size", type=int, default=256, help="GrabCut runs on the crop resized to this")
    parser.add_argument("--grabcut-iterations", type=int, default=3)
    parser.add_argument("--model", default=MASK2FORMER, help="mask2former: its weights registry name")
    parser.add_argument("--mask-threshold", type=float, default=0.8, help="mask2former: class probability threshold")
    parser.add_argument("--device", default="cpu", help="mask2former: cpu | cuda")
    args = parse_stage_args(parser, argv)
    backend = choose_backend(STAGE, args.backend, HEAVY)
    with timed(STAGE, args.timing) as timing:
        table: Table = load_previous(args.out, STAGE)
        if backend == "light":
            cache = stage_cache(args, STAGE, VERSION, crop_scale=args.crop_scale, work_size=args.work_size,
                                iterations=args.grabcut_iterations)
            label, weights = "light: GrabCut seeded from the face box (opencv)", []
            params = {"work_size": args.work_size, "grabcut_iterations": args.grabcut_iterations}
        else:
            from triptych.vision.hf_folder import model_folder
            from triptych.vision.segmentation import COMPANIONS

            model_record = model_folder(args.model, COMPANIONS)[1]  # the model loads where the crops are
            weights = [{k: model_record[k] for k in ("name", "sha256")}]
            cache = stage_cache(args, STAGE, VERSION, crop_scale=args.crop_scale, model=weights,
                                threshold=args.mask_threshold)
            label = f"mask2former: panoptic person segments ({args.model}, transformers)"
            params = {"model": args.model, "mask_threshold": args.mask_threshold}
        kept = table.kept()
        results = compute_all(cache, args, [(r["sha256"], r["face_box"], crop_and_mask,
                                             (image_path(table, r), r["face_box"], args.crop_scale, args.work_size,
                                              args.grabcut_iterations, backend, args.model, args.device,
                                              args.mask_threshold)) for r in kept])
        for record, result in zip(kept, results):
            box = record["face_box"]
            record.update(result)
            side = result["crop_box"][2] - result["crop_box"][0]
            fraction = overlap(box, result["crop_box"]) / (side * side) if side else 0.0
            record["face_fraction"] = fraction
            if fraction <= args.min_face_fraction:
                drop(record, STAGE, f"face covers {fraction:.1%} of the crop (<= {args.min_face_fraction:.0%})")
            elif result["mask_rle"] is None:
                drop(record, STAGE, "no person mask overlaps the face box")
            timing.items += 1
        timing.count(cache)
        table.log(STAGE, label, {"backend": args.backend, "crop_scale": args.crop_scale,
                                 "min_face_fraction": args.min_face_fraction, **params},
                  **({"weights": weights} if weights else {}))
        save(table, args.out, STAGE)
    print(f"{STAGE}: {len(table.kept())} of {len(table.records)} images kept")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
