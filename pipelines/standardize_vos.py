"""DVC stage ``standardize_vos``: raw DAVIS / YouTube-VOS test videos plus the published mask set -> frames
and masks per protocol variant, a sha256 manifest per (split, variant) and a report of missing, extra and
mis-counted videos, by name.

docs/protocols/video_completion.md (frames decoded as both references decode them: OpenCV, BGR -> RGB; see
``vos_layouts``):

- ``e2fgvi`` (E2FGVI @ 709cbe3 ``core/dataset.py``): frames resized to 432x240 with PIL's default
  bicubic filter (``triptych.benchmarks.vos.resize_frame``).
- ``propainter`` (ProPainter ``core/dataset.py`` ``TestDataset``): frames resized with
  ``cv2.resize(..., INTER_LINEAR)``; its ground truth differs from E2FGVI's.
- Masks, the same in both references: resized NEAREST, ``> 0``, dilated with a 3x3 cross for 4
  iterations (``triptych.benchmarks.vos.process_mask``, the function the benchmark scores with).

Output, per variant: ``<out>/<name>/<variant>/frames/<video>/<i:05d>.png``, ``masks/<video>/<i:05d>.png``
(the processed hole, 0 / 255, already dilated: a benchmark reading them uses ``mask_dilation: 0``) and
``test.json`` (video -> frame count, in the evaluation order); the manifest ``<out>/<name>-<variant>.json``
and the report ``<out>/<name>-report.json``. Frame ``i`` is the ``i``-th source frame in sorted-name order.
Each split writes only under its own name, so standardizing a second split keeps the first (the DVC stage's
output folder is ``persist``).

Subset mode: ``--subset bear,blackswan`` standardizes only those videos of the split list (in its order),
and ``--allow-missing 1`` the videos present; either way the report records ``subset: {count, of, unit,
ids}`` and the ``davis`` / ``youtube-vos`` benchmarks score the result only with ``score --subset``.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from PIL import Image

from triptych.atomic import atomic_write_text
from triptych.benchmarks.vos import process_mask, resize_frame
from triptych.errors import InputError, TriptychError
from triptych.manifests import build_manifest, write_manifest
from triptych.pipelines.stage_io import parse_stage_args, run_stage, timed, write_json
from triptych.progress import interrupted_line, sample_progress
from triptych.pipelines.vos_layouts import (LAYOUTS, E2fgviLayout, FoldersLayout, SourceVideo, open_layout,
                                            read_frame_counts)

VARIANTS = ("e2fgvi", "propainter")
_NAMED = 20  # videos named in an error message; the report lists them all


def variant_frame(image: np.ndarray, variant: str, size: tuple[int, int]) -> np.ndarray:
    """One decoded uint8 RGB frame as the variant prepares it, at ``size`` = (W, H)."""
    if variant == "e2fgvi":
        return resize_frame(image, size)
    if variant == "propainter":
        if (image.shape[1], image.shape[0]) == tuple(size):
            return image
        return cv2.resize(image, tuple(size), interpolation=cv2.INTER_LINEAR)
    raise TriptychError(f"unknown variant {variant!r}", fix=f"use one of: {', '.join(VARIANTS)}")


def compare_to_list(found: dict[str, int], expected: dict[str, int]) -> dict[str, object]:
    """Missing, extra and mis-counted videos by name (the split list holds name -> frame count)."""
    return {"missing": [v for v in expected if v not in found], "extra": sorted(set(found) - set(expected)),
            "frame_count_mismatch": {v: {"expected": expected[v], "found": found[v]}
                                     for v in expected if v in found and found[v] != expected[v]}}


def _named(videos: list[str]) -> str:
    more = f", ... ({len(videos) - _NAMED} more)" if len(videos) > _NAMED else ""
    return ", ".join(videos[:_NAMED]) + more


def _refuse_incomplete(report: dict[str, object], source: str) -> None:
    missing, mismatch = report["missing"], report["frame_count_mismatch"]
    parts = []
    if missing:
        parts.append(f"{len(missing)} video(s) of the list are missing: {_named(missing)}")
    if mismatch:
        parts.append("frame counts differ from the list: " + _named(
            [f"{v} (list {c['expected']}, found {c['found']})" for v, c in mismatch.items()]))
    raise InputError(f"split {report['name']!r} under {source}: " + "; ".join(parts),
                     fix="add or restore those videos, or pass --allow-missing 1 to standardize the videos present "
                         "(the report names the rest)")


def _png(array: np.ndarray) -> bytes:
    """Lossless PNG at zlib level 1: 3x faster to write than PIL's default level 6, about 5% larger."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def _write_video(video: SourceVideo, roots: dict[str, Path], size: tuple[int, int],
                 dilation: int) -> dict[str, list[str]]:
    """Write one video's frames and masks under every variant's root; return the written paths per variant."""
    if not video.frame_names:
        raise InputError(f"{video.frames}: no frames", fix="restore the video's frames")
    for root in roots.values():
        (root / "frames" / video.name).mkdir(parents=True)
        (root / "masks" / video.name).mkdir(parents=True)
    written: dict[str, list[str]] = {variant: [] for variant in roots}
    for index, image in enumerate(video.iter_frames()):
        hole = _png(process_mask(video.mask(index), size, dilation) * 255)  # the same in every variant
        stem = f"{index:05d}.png"
        for variant, root in roots.items():
            (root / "frames" / video.name / stem).write_bytes(_png(variant_frame(image, variant, size)))
            (root / "masks" / video.name / stem).write_bytes(hole)
            written[variant] += [f"frames/{video.name}/{stem}", f"masks/{video.name}/{stem}"]
    return written


def _map_videos(sources: list[SourceVideo], roots: dict[str, Path], size: tuple[int, int], dilation: int,
                workers: int) -> Iterator[dict[str, list[str]]]:
    """``_write_video`` for every video, here or in ``workers`` spawned processes. Each video writes its own
    files and the manifest sorts the paths, so the worker count cannot change an output byte."""
    if workers == 1:
        yield from (_write_video(video, roots, size, dilation) for video in sources)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        yield from pool.map(partial(_write_video, roots=roots, size=size, dilation=dilation), sources)


def select_subset(expected: dict[str, int], subset: list[str], where: str) -> dict[str, int]:
    """The split list reduced to the named videos, in the list's order; a name not in it is refused."""
    unknown = [v for v in subset if v not in expected]
    if unknown:
        raise InputError(f"--subset: video(s) not in {where}: {_named(unknown)}",
                         fix=f"name videos of the split list, e.g. {', '.join(list(expected)[:3])}")
    return {v: n for v, n in expected.items() if v in set(subset)}


def standardize(layout: E2fgviLayout | FoldersLayout, name: str, split_list: Path | None, variants: list[str],
                size: tuple[int, int], dilation: int, allow_missing: bool, out: Path, source: str,
                workers: int = 1, subset: list[str] | None = None) -> dict[str, object]:
    """Write every variant's frames, masks, ``test.json`` and manifest, and the report; return the report.

    Expected videos and their order come from ``split_list`` (``datasets/splits/*.json``, E2FGVI's
    ``test.json`` order); without one, from the layout (its ``test.json``, or every video found).
    ``subset`` names the only videos to standardize (subset mode, recorded in the report).
    """
    found = layout.index()
    if split_list is not None:
        expected = read_frame_counts(split_list, "split list")
    else:
        expected = dict(layout.test_json) if isinstance(layout, E2fgviLayout) else dict(found)
    listed = len(expected)
    if subset:
        expected = select_subset(expected, subset, str(split_list or "the layout's videos"))
    report: dict[str, object] = {"name": name, "source": source, "split_list": str(split_list) if split_list else None,
                                 "expected_videos": len(expected), "found_videos": len(found),
                                 **compare_to_list(found, expected)}
    if (report["missing"] or report["frame_count_mismatch"]) and not allow_missing:
        write_json(out / f"{name}-report.json", report)
        _refuse_incomplete(report, source)
    videos = [v for v in expected if v in found]
    sources = [layout.video(v) for v in videos]
    unused = {video.name: video.unused_masks() for video in sources}  # every mask checked before any work
    roots = {variant: out / name / variant for variant in variants}
    for root in roots.values():
        shutil.rmtree(root, ignore_errors=True)  # the output holds exactly what the manifest lists
    files: dict[str, list[str]] = {variant: [] for variant in variants}
    finished = 0
    try:
        with sample_progress(f"standardize_vos {name}", len(sources), 0, "videos") as advance:
            for video, written in zip(sources, _map_videos(sources, roots, size, dilation, workers)):
                for variant, rel in written.items():
                    files[variant] += rel
                finished += 1
                advance(video.name)
    except KeyboardInterrupt:
        print(interrupted_line(f"{finished} of {len(sources)} videos written under {out / name}, no manifest yet "
                               "(the stage writes every video again)", resume=False), file=sys.stderr, flush=True)
        raise
    groups = {video.name: len(video.frame_names) for video in sources}
    for variant, root in roots.items():
        root.mkdir(parents=True, exist_ok=True)
        # key order = evaluation order; its content is the manifest's groups, so the manifest leaves it out
        atomic_write_text(root / "test.json", json.dumps(groups) + "\n")
        manifest = build_manifest(f"{name}/{variant}", root, files[variant], groups)
        write_manifest(manifest, out / f"{name}-{variant}.json")
    report.update(standardized_videos=videos, frames=sum(groups.values()), variants=variants, size=list(size),
                  mask_dilation=dilation, unused_masks={v: n for v, n in unused.items() if n},
                  subset={"count": len(videos), "of": listed, "unit": "videos", "ids": videos}
                  if len(videos) < listed else None)
    write_json(out / f"{name}-report.json", report)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m triptych.pipelines.standardize_vos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="split name, e.g. davis-test or sample-tennis")
    parser.add_argument("--layout", default="folders", choices=LAYOUTS,
                        help="folders: --frames/--masks templates (ProPainter, raw DAVIS); e2fgvi: --root with "
                             "JPEGImages/<video>.zip, test_masks/<video>/, test.json")
    parser.add_argument("--root", default="", help="e2fgvi layout: the folder holding JPEGImages/ and test.json")
    parser.add_argument("--frames", default="", help="folders layout: frames folder template with {video}")
    parser.add_argument("--masks", default="", help="folders layout: mask-set folder template with {video}")
    parser.add_argument("--split-list", default="",
                        help="JSON name -> frame count, in evaluation order ('' = the layout's test.json, or "
                             "every video found)")
    parser.add_argument("--variants", default="e2fgvi,propainter", help="comma-separated protocol variants")
    parser.add_argument("--width", type=int, default=432)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--mask-dilation", type=int, default=4, help="3x3 cross dilation iterations")
    parser.add_argument("--allow-missing", type=int, default=0,
                        help="1: standardize the videos present; missing and mis-counted ones are only reported")
    parser.add_argument("--workers", type=int, default=1, help="local processes, one video each at a time")
    parser.add_argument("--subset", default="", help="comma-separated videos of the split list: standardize only "
                                                     "these (subset mode, recorded in the report); '' = all")
    parser.add_argument("--out", type=Path, default=Path("datasets/build/vos"))
    parser.add_argument("--timing", type=Path, default=None, help="metrics file for the stage's wall time")
    args = parse_stage_args(parser, argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise TriptychError(f"unknown or no variant(s): {args.variants!r}", fix=f"use: {', '.join(VARIANTS)}")
    if args.workers < 1:
        raise TriptychError(f"--workers {args.workers}: must be at least 1")
    layout = open_layout(args.layout, args.root, args.frames, args.masks)
    source = args.root if args.layout == "e2fgvi" else f"{args.frames} + {args.masks}"
    with timed("standardize_vos", args.timing) as timing:
        report = standardize(layout, args.name, Path(args.split_list) if args.split_list else None, variants,
                             (args.width, args.height), args.mask_dilation, bool(args.allow_missing), args.out,
                             f"{args.layout}: {source}", args.workers,
                             [v.strip() for v in args.subset.split(",") if v.strip()])
        timing.items = timing.computed = len(report["standardized_videos"])
        timing.extra = {"frames": report["frames"]}
    for key in ("missing", "extra"):
        if report[key]:
            print(f"{args.name}: {key} videos: {', '.join(report[key])}")
    if report["frame_count_mismatch"]:
        print(f"{args.name}: frame counts differ from the list: {report['frame_count_mismatch']}")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
