"""Video metrics over optical flow of the ground truth (E_warp): one value per video, mean over videos.

``--pred`` and ``--gt`` are folders. A folder of frames is one video (named after the ``--gt``
folder), and a folder of folders holds one video per sub-folder, paired by name. Frames pair by relative
path as in ``triptych.media.pair_paths`` and are taken in sorted order. Pair t is frames (t, t+1) of
that order.

The variant's callable is ``fn(pred_frames, gt_frames[, masks][, flow_dir]) -> VideoEwarp``, with the inputs
its registry entry declares (``inputs``, ``triptych.inputs``). A variant that declares ``flow_dir`` reads
stored flows and needs ``--flow-dir`` (``<flow-dir>/`` for one video, ``<flow-dir>/<video>/`` for several;
docs/conventions.md); one that does not computes its flows from ``--gt`` and refuses ``--flow-dir``.
``masks`` (DEVIL's masked E_warp) is ``--mask``, as for ``video_frames``. The flows always come from the ground
truth, so every method scored on a video is measured with the same flows.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, Callable

from triptych.errors import InputError
from triptych.inputs import bind
from triptych.media import Pair, check_same_size, pair_paths, read_prediction, read_rgb
from triptych.measure_kinds.masked_image import check_masks_option, mask_paths, video_masks
from triptych.metrics.aggregate import SampleMean

OPTIONS: frozenset[str] = frozenset({"--flow-dir", "--mask"})
REDUCTION = "mean over videos of the per-video value (each the mean over the video's frame pairs)"


def group_videos(pairs: list[Pair], gt_root: Path) -> dict[str, list[Pair]]:
    """Frames grouped by video: the parent folder of each sample id, or the ``--gt`` folder's name.

    Frames directly in ``--gt`` next to video sub-folders are refused, because they would belong to no
    video.
    """
    videos: dict[str, list[Pair]] = {}
    for pair in pairs:
        parent = PurePosixPath(pair.sample_id).parent.as_posix()
        videos.setdefault(parent, []).append(pair)
    if "." in videos and len(videos) > 1:
        raise InputError(
            f"--gt {gt_root}: holds both frames ({videos['.'][0].gt.name}, ...) and video folders",
            fix="give either one folder of frames (one video) or a folder of video folders")
    if "." in videos:
        return {gt_root.name: videos["."]}
    return {name: sorted(frames, key=lambda p: p.sample_id) for name, frames in sorted(videos.items())}


def video_flow_dir(flow_dir: Path, video: str, single: bool) -> Path:
    """Where the flows of ``video`` are: ``<flow-dir>/`` for a single video, ``<flow-dir>/<video>/`` for several."""
    if single:
        return flow_dir
    sub = flow_dir / video
    if not sub.is_dir():
        raise InputError(f"--flow-dir {flow_dir}: no folder {video}/ for video {video!r}",
                         fix="with several videos, store the flows of video V in <flow-dir>/V/ "
                             "(fw_%05d.npy, bw_%05d.npy, t = 0..T-2)")
    return sub


def check(m: Any, fn: Callable[..., Any]) -> None:
    """``--flow-dir`` is required by a variant that reads stored flows and refused by one that computes them;
    ``--mask`` is required by a variant that declares ``masks`` (DEVIL's masked E_warp) and refused by the
    others; checked before any weights are looked up."""
    metric = f"{m.metric.name}:{m.variant.name}"
    check_masks_option(m, refused_fix="drop --mask, or use ewarp_masked for the hole region")
    mode = m.variant.inputs.mode("flow_dir")
    flow_dir = m.inputs.flow_dir
    if mode == "required" and flow_dir is None:
        raise InputError(f"{metric} reads stored flows of the ground truth, and --flow-dir was not given",
                         fix="pass --flow-dir DIR with fw_%05d.npy (t->t+1) and bw_%05d.npy (t+1->t), "
                             "t = 0..T-2 (<flow-dir>/<video>/ for several videos), or choose a variant that "
                             "computes its flows, e.g. --variant dis")
    if mode == "refused" and flow_dir is not None:
        raise InputError(f"{metric} computes its own flows from --gt, so --flow-dir is not used",
                         fix="drop --flow-dir, or use --variant files to score with stored flows")


def run(m: Any, fn: Callable[..., Any]) -> None:
    metric = f"{m.metric.name}:{m.variant.name}"
    flow_dir = m.inputs.flow_dir
    gt_root = Path(m.inputs.gt)
    if Path(m.inputs.pred).is_file() or gt_root.is_file():
        raise InputError(f"{metric} scores videos: --pred and --gt must be folders of frames (or of videos)",
                         fix="point --pred and --gt at a folder of frames, or a folder of video folders")
    all_pairs = pair_paths(m.inputs.pred, gt_root)
    masks = mask_paths(all_pairs, Path(m.inputs.mask), gt_root) if m.inputs.mask is not None else None
    videos = group_videos(all_pairs, gt_root)
    m.aggregate = SampleMean(reduction=REDUCTION)
    per_pair: dict[str, list[float]] = {}
    occluded: dict[str, list[int]] = {}
    flows: dict[str, dict[str, Any]] = {}
    for video, pairs in m.track(videos.items(), lambda item: item[0], "videos"):
        gt_frames = [read_rgb(p.gt) for p in pairs]
        pred_frames = []
        for pair, gt in zip(pairs, gt_frames):
            pred = read_prediction(pair.pred)
            check_same_size(pred, gt, pair)
            pred_frames.append(pred)
        if len(pairs) < 2:
            raise InputError(f"--gt video {video!r}: {len(pairs)} frame, so no frame pair to warp",
                             fix="E_warp needs at least 2 frames per video")
        sizes = {g.shape for g in gt_frames}
        if len(sizes) > 1:
            raise InputError(f"--gt video {video!r}: frames of different sizes {sorted(sizes)}",
                             fix="all frames of a video must have one size")
        offered = video_masks(masks, pairs)
        if flow_dir is not None:
            offered["flow_dir"] = video_flow_dir(Path(flow_dir), video, single=len(videos) == 1)
        result = fn(pred_frames, gt_frames, **bind(m.variant.inputs, offered, metric), **m.params)
        m.aggregate.update(result.value)
        m.per_sample.append((video, result.value))
        per_pair[video] = result.per_pair
        occluded[video] = result.occluded_pixels
        flows[video] = result.flow
    m.extras.update({"per_pair": per_pair, "occluded_pixels": occluded, "flow": flows,
                     "pair_ids": {v: [f"{p[t].sample_id}->{p[t + 1].sample_id}" for t in range(len(p) - 1)]
                                  for v, p in videos.items()}})
