"""Full-reference image metrics over one region of each frame: one value per (prediction, ground truth,
mask) triple, pooled mean.

``--mask`` is required: a mask file when ``--pred`` / ``--gt`` are files, else a folder whose masks pair
with the frames by identical relative path (suffix ignored, as predictions do). A mask is a
single-channel 8-bit image read with ``read_mask``: any value > 0 is hole; no dilation is applied (give
the masks the benchmark variant scores with, e.g. E2FGVI's dilated ones). The metric is called as
``fn(pred, gt, hole_mask, **variant.params)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from triptych.errors import InputError
from triptych.media import IMAGE_SUFFIXES, Pair, _index, check_same_size, pair_paths, read_mask, read_prediction, read_rgb

OPTIONS: frozenset[str] = frozenset({"--mask"})


def check(m: Any, fn: Callable[..., float]) -> None:
    if m.inputs.mask is None:
        raise InputError(f"metric {m.metric.name!r} scores one region of each frame and needs --mask",
                         fix="pass --mask FILE_OR_FOLDER (single-channel PNGs, > 0 = hole), paired with "
                             "--gt by relative path")


def check_masks_option(m: Any, refused_fix: str) -> None:
    """``--mask`` as a video variant declares its input ``masks`` (``triptych.inputs``): required, optional or
    refused."""
    metric, mode = f"{m.metric.name}:{m.variant.name}", m.variant.inputs.mode("masks")
    if mode == "required" and m.inputs.mask is None:
        raise InputError(f"{metric} needs the hole masks", fix="pass --mask FOLDER laid out like --gt (> 0 = hole)")
    if mode == "refused" and m.inputs.mask is not None:
        raise InputError(f"{metric} does not use masks", fix=refused_fix)


def video_masks(masks: dict[str, Path] | None, frames: list[Pair]) -> dict[str, Any]:
    """The input ``masks`` of one video as ``triptych.inputs.bind`` takes it (``{"masks": one mask per frame}``),
    nothing without ``--mask``; ``masks`` from ``mask_paths``."""
    return {} if masks is None else {"masks": [read_mask(masks[p.sample_id]) for p in frames]}


def mask_paths(pairs: list[Pair], mask: Path, gt: Path) -> dict[str, Path]:
    """The mask of each pair: the file itself for a single pair, else the same relative path under ``mask``."""
    if not mask.exists():
        raise InputError(f"--mask {mask}: no such file or folder", fix="check the path")
    if gt.is_file():
        if not mask.is_file():
            raise InputError(f"--mask {mask} is a folder but --gt {gt} is a file",
                             fix="pass the one mask file of this frame")
        return {pairs[0].sample_id: mask}
    if not mask.is_dir():
        raise InputError(f"--mask {mask} is a file but --gt {gt} is a folder",
                         fix="pass the folder of masks, laid out like the ground truth")
    masks = _index(mask, IMAGE_SUFFIXES)
    missing = [p.sample_id for p in pairs if p.sample_id not in masks]
    if missing:
        raise InputError(f"--mask {mask}: {len(missing)} mask(s) missing, first: {missing[0]} (for "
                         f"{next(p.gt for p in pairs if p.sample_id == missing[0])})",
                         fix="write one mask per ground-truth frame, at the same relative path")
    extra = sorted(set(masks) - {p.sample_id for p in pairs})
    if extra:
        raise InputError(f"--mask {mask}: {len(extra)} mask(s) without a frame, first: "
                         f"{masks[extra[0]].relative_to(mask)}",
                         fix="remove it, or point --mask at the masks of these frames only")
    return {p.sample_id: masks[p.sample_id] for p in pairs}


def run(m: Any, score: Callable[..., float]) -> None:
    pairs = pair_paths(m.inputs.pred, m.inputs.gt)
    masks = mask_paths(pairs, Path(m.inputs.mask), Path(m.inputs.gt))
    for pair in m.track(pairs, lambda p: p.sample_id):
        gt = read_rgb(pair.gt)
        pred = read_prediction(pair.pred)
        check_same_size(pred, gt, pair)
        hole = read_mask(masks[pair.sample_id])
        if hole.shape != gt.shape[:2]:
            raise InputError(f"{masks[pair.sample_id]}: mask is {hole.shape[1]}x{hole.shape[0]} but ground truth "
                             f"{pair.gt} is {gt.shape[1]}x{gt.shape[0]} (WxH)",
                             fix="give masks at the frames' resolution (resize with NEAREST before any dilation)")
        try:
            value = float(score(pred, gt, hole, **m.params))
        except InputError as exc:  # name the files of the frame whose region is empty
            raise InputError(f"{masks[pair.sample_id]} (frame {pair.gt}): {exc.message}", fix=exc.fix) from exc
        m.aggregate.update(value)
        m.per_sample.append((pair.sample_id, value))
