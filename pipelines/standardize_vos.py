"""DVC stage ``standardize_vos``: raw video-object-segmentation folders -> frames and masks per protocol
variant, with a sha256 manifest per (split, variant) and a report of missing or extra videos.

protocols.md section 1:

- ``e2fgvi`` (E2FGVI @ 709cbe3 ``core/dataset.py``): frames resized to 432x240 with PIL's default bicubic
  filter; masks resized NEAREST, thresholded ``> 0`` and dilated with a 3x3 cross for 4 iterations. Both
  come from ``triptych.benchmarks.vos.process_frame`` / ``process_mask``, the functions the benchmark
  scores with, so the stage and the scorer cannot drift apart.
- ``propainter``: frames resized with ``cv2.resize(..., INTER_LINEAR)`` (its ground truth differs from
  E2FGVI's); masks processed as above.

Written masks are the processed hole (0 / 255 PNG, already dilated): a benchmark reading them must use
``mask_dilation: 0``. Layouts are path templates with ``{video}``: DAVIS
``<root>/JPEGImages/480p/{video}`` with a mask set ``<masks>/{video}``; YouTube-VOS-like plain folders
likewise. Expected videos come from a split list (``datasets/splits/*.json``: name -> frame count).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from triptych.benchmarks.vos import IMAGE_SUFFIXES, process_frame, process_mask
from triptych.errors import InputError, TriptychError
from triptych.manifests import build_manifest, write_manifest
from triptych.media import read_rgb
from triptych.pipelines.stage_io import read_json, run_stage, timed, write_json

VARIANTS = ("e2fgvi", "propainter")


def video_folder(template: str, video: str) -> Path:
    return Path(template.replace("{video}", video))


def find_videos(template: str) -> list[str]:
    """Video names present under a ``.../{video}/...`` template: entries whose filled-in folder exists."""
    if "{video}" not in template:
        raise TriptychError(f"frames template {template!r} has no {{video}} placeholder",
                            fix="e.g. DAVIS: /data/DAVIS/JPEGImages/480p/{video}")
    parent = Path(template.split("{video}", 1)[0] or ".")
    if not parent.is_dir():
        raise InputError(f"{parent}: folder not found (frames template {template!r})", fix="check the frames path")
    return sorted(d.name for d in parent.iterdir()
                  if d.is_dir() and not d.name.startswith(".") and video_folder(template, d.name).is_dir())


def list_frames(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def compare_to_list(found: dict[str, int], expected: dict[str, int]) -> dict[str, object]:
    """Missing, extra and mis-counted videos by name (the split list holds name -> frame count)."""
    return {"missing": sorted(set(expected) - set(found)), "extra": sorted(set(found) - set(expected)),
            "frame_count_mismatch": {v: {"expected": expected[v], "found": found[v]}
                                     for v in sorted(set(found) & set(expected)) if found[v] != expected[v]}}


def variant_frame(path: Path, variant: str, size: tuple[int, int]) -> np.ndarray:
    """One frame as the variant prepares it (uint8 RGB at ``size`` = (W, H))."""
    if variant == "e2fgvi":
        return process_frame(path, size)
    if variant == "propainter":
        image = read_rgb(path)
        if (image.shape[1], image.shape[0]) == size:
            return image
        return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    raise TriptychError(f"unknown variant {variant!r}", fix=f"use one of: {', '.join(VARIANTS)}")


def standardize(name: str, frames: str, masks: str, split_list: Path | None, variants: list[str],
                size: tuple[int, int], dilation: int, allow_missing: bool, out: Path) -> dict[str, object]:
    """Write ``out/<name>/<variant>/{frames,masks}/<video>/<stem>.png``, one manifest per variant
    (``out/<name>-<variant>.json``) and the report ``out/<name>-report.json``; return the report."""
    present = find_videos(frames)
    counts = {v: len(list_frames(video_folder(frames, v))) for v in present}
    expected = {str(k): int(c) for k, c in read_json(split_list).items()} if split_list else dict(counts)
    report = {"name": name, "frames": frames, "masks": masks, "split_list": str(split_list) if split_list else None,
              "expected_videos": len(expected), **compare_to_list(counts, expected)}
    if report["missing"] and not allow_missing:
        write_json(out / f"{name}-report.json", report)
        raise InputError(f"split {name!r}: {len(report['missing'])} video(s) of the list are missing under "
                         f"{frames!r}: {', '.join(report['missing'])}",
                         fix="add the missing videos, or pass --allow-missing 1 to standardize the rest")
    videos = sorted(set(counts) & set(expected))
    for variant in variants:
        root = out / name / variant
        files, groups = [], {}
        for video in videos:
            frame_paths = list_frames(video_folder(frames, video))
            if not frame_paths:
                raise InputError(f"{video_folder(frames, video)}: no frames", fix="check the video folder")
            for frame_path in frame_paths:
                rel_frame = f"frames/{video}/{frame_path.stem}.png"
                rel_mask = f"masks/{video}/{frame_path.stem}.png"
                (root / rel_frame).parent.mkdir(parents=True, exist_ok=True)
                (root / rel_mask).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(variant_frame(frame_path, variant, size)).save(root / rel_frame)
                hole = process_mask(video_folder(masks, video) / f"{frame_path.stem}.png", size, dilation)
                Image.fromarray(hole * 255).save(root / rel_mask)
                files += [rel_frame, rel_mask]
            groups[video] = len(frame_paths)
        write_manifest(build_manifest(f"{name}/{variant}", root, files, groups), out / f"{name}-{variant}.json")
    report["standardized_videos"] = videos
    report["variants"] = variants
    write_json(out / f"{name}-report.json", report)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m triptych.pipelines.standardize_vos", description=__doc__)
    parser.add_argument("--name", required=True, help="split name, e.g. davis-test or sample-tennis")
    parser.add_argument("--frames", required=True, help="frames folder template with {video}")
    parser.add_argument("--masks", required=True, help="mask-set folder template with {video}")
    parser.add_argument("--split-list", default="", help="JSON name -> frame count ('' = every video found)")
    parser.add_argument("--variants", default="e2fgvi,propainter", help="comma-separated protocol variants")
    parser.add_argument("--width", type=int, default=432)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--mask-dilation", type=int, default=4, help="3x3 cross dilation iterations")
    parser.add_argument("--allow-missing", type=int, default=0, help="1: standardize the videos present")
    parser.add_argument("--out", type=Path, default=Path("datasets/build/vos"))
    parser.add_argument("--timing", type=Path, default=None, help="metrics file for the stage's wall time")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise TriptychError(f"unknown variant(s) {', '.join(unknown)}", fix=f"use: {', '.join(VARIANTS)}")
    with timed("standardize_vos", args.timing) as timing:
        report = standardize(args.name, args.frames, args.masks, Path(args.split_list) if args.split_list else None,
                             variants, (args.width, args.height), args.mask_dilation, bool(args.allow_missing),
                             args.out)
        timing.items = timing.computed = len(report["standardized_videos"])
    for key in ("missing", "extra"):
        if report[key]:
            print(f"{args.name}: {key} videos: {', '.join(report[key])}")
    if report["frame_count_mismatch"]:
        print(f"{args.name}: frame counts differ from the list: {report['frame_count_mismatch']}")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
