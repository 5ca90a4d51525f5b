"""Video completion benchmarks (DAVIS / YouTube-VOS protocol) on folders of frames and masks.

The ``e2fgvi`` benchmark variant follows E2FGVI @ 709cbe3 ``core/dataset.py`` and ``evaluate.py``
(docs/protocols/video_completion.md): frames resized to 432x240 with PIL's default (bicubic) filter; masks resized
NEAREST, thresholded > 0 and dilated with a 3x3 cross for 4 iterations; the prediction truncated to
uint8 and composited ``pred * mask + gt * (1 - mask)``; PSNR / SSIM per frame, E_warp per video, VFID
over the set of videos (each video one I3D clip of its composited frames, as ``evaluate.py`` feeds it).

``load_standardized`` reads the published test sets (``davis``, ``youtube-vos``) from the
``standardize_vos`` stage's output, which holds the frames and dilated masks each variant prepares.
A variant sets ``size`` and ``mask_dilation`` only: the filters (bicubic frames, nearest masks) are the one published choice, and the
quantisation of the prediction is the metric variant's (``psnr:e2fgvi``), so neither is a variant key.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence as SequenceABC
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np
from PIL import Image

from triptych.errors import InputError, TriptychError
from triptych.folders import check_exact_files, contained, visible_entries
from triptych.manifests import check_folders_listed
from triptych.media import IMAGE_SUFFIXES, read_mask, read_prediction, read_rgb
from triptych.methods import check_output
from triptych.registry import BenchmarkSpec
from triptych.schema import Schema, loader_schema
from triptych.tasks import SET_SAMPLE_ID, BenchmarkData, load_checked_manifest, MetricUse, Score, subset_requested

PREDICTION_SUFFIXES = (".png", ".jpg")
VIDEO_LAYOUT = Schema("video layout", ("frames", "masks"))
PREDICT_CHUNK = 64  # target frames per call of a method that declares a temporal_reach


@dataclass(frozen=True)
class Video:
    name: str
    frames: tuple[Path, ...]
    masks: tuple[Path, ...]

    def __len__(self) -> int:
        """The number of frames: the sample's cost, by which ``triptych score`` hands out the longest first."""
        return len(self.frames)


def resize_frame(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """E2FGVI frame resize of a decoded uint8 RGB frame: ``Image.resize(size)``, PIL's default bicubic filter.
    The result is a writable array, as ``read_rgb``'s is (``np.asarray`` of a PIL image is read-only, and
    ``torch.from_numpy`` warns on a read-only buffer)."""
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return np.array(Image.fromarray(image).resize(tuple(size), Image.BICUBIC))


def process_frame(path: Path, size: tuple[int, int]) -> np.ndarray:
    """E2FGVI frame reading: decode to RGB, then ``resize_frame``."""
    return resize_frame(read_rgb(path), size)


def process_mask(path: Path, size: tuple[int, int], dilation_iterations: int) -> np.ndarray:
    """E2FGVI mask processing: NEAREST resize, ``> 0``, ``cv2.dilate`` with a 3x3 cross, N iterations.

    Returns uint8 {0, 1} (H, W), 1 = hole. The hole the model sees is larger than the PNG's.
    """
    if not path.is_file():
        raise InputError(f"{path}: mask not found", fix="every frame needs a mask with the same file stem")
    mask = read_mask(path)  # convert("L") > 0: resizing NEAREST before or after picks the same pixels
    if (mask.shape[1], mask.shape[0]) != tuple(size):
        mask = np.asarray(Image.fromarray(mask.astype(np.uint8)).resize(tuple(size), Image.NEAREST)) > 0
    mask = mask.astype(np.uint8)
    if dilation_iterations:
        kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
        mask = cv2.dilate(mask, kernel, iterations=dilation_iterations)
    return mask


def truncate(frames: np.ndarray) -> np.ndarray:
    """E2FGVI evaluate.py's quantisation of completed frames in [0, 1]: ``(pred * 255).astype(uint8)``
    truncates; clipped first so that out-of-range values cannot wrap around (a no-op for a tanh-bounded
    model such as E2FGVI)."""
    return np.clip(frames * 255.0, 0, 255).astype(np.uint8)


def _list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found", fix="check the benchmark's data root")
    return [p for p in visible_entries(folder) if p.suffix.lower() in IMAGE_SUFFIXES]


@loader_schema(variant=(("size", "mask_dilation"), ()), params=(("root", "manifest", "videos"), ("max_frames",)))
def load_video_folders(spec: BenchmarkSpec, variant: str, params: dict[str, Any], data_root: Path) -> BenchmarkData:
    """Videos given as ``params.videos: {name: {frames: DIR, masks: DIR | FILE}}`` under ``params.root``.

    ``masks`` is a folder with one mask per frame (same stem), or one image: a static mask for every frame,
    as ProPainter's example inputs give it (``inputs/video_completion/mask_square.png``)."""
    root = data_root / spec.params["root"]
    manifest = load_checked_manifest(spec, data_root)
    limit = spec.params.get("max_frames")
    videos = []
    for name, layout in spec.params["videos"].items():
        layout = VIDEO_LAYOUT.check(layout, f"{spec.source} params videos {name!r}")
        frame_dir = contained(root, layout["frames"], f"benchmark {spec.name!r} video {name!r}")
        mask_src = contained(root, layout["masks"], f"benchmark {spec.name!r} video {name!r}")
        frames = _list_images(frame_dir)[:limit]
        if not frames:
            raise InputError(f"{frame_dir}: no frames", fix="check the video folder")
        check_folders_listed(manifest, root, [frame_dir] + ([mask_src] if mask_src.is_dir() else []))
        if mask_src.is_file():
            masks = (mask_src,) * len(frames)
        else:
            masks = tuple(mask_src / f"{f.stem}.png" for f in frames)
        videos.append(Video(name, tuple(frames), masks))
    return BenchmarkData(spec, variant, params, root, manifest, videos, VideoCompletion(params))


def _standardized_fix(spec: BenchmarkSpec, name: str) -> str:
    return (f"in params.yaml set standardize_vos name: {name}, layout: e2fgvi, root: <E2FGVI's datasets/"
            f"{spec.benchmark}>, split_list: the benchmark's list in datasets/splits/, then 'dvc repro "
            "standardize_vos' (datasets/cards/vos.md); or pass --data-root to the folder holding its build/vos/")


@loader_schema(variant=(("size", "mask_dilation", "standardized_dilation"), ("subset",)),
               params=(("standardized", "videos", "frames"), ()))
def load_standardized(spec: BenchmarkSpec, variant: str, params: dict[str, Any], data_root: Path) -> BenchmarkData:
    """A published test set as ``standardize_vos`` wrote it under ``<data root>/<params.standardized>``:
    the variant's ``frames/<video>/<i:05d>.png``, ``masks/...`` and ``test.json`` (evaluation order), its
    manifest ``<standardized>-<variant>.json`` and the stage report ``<standardized>-report.json``, whose
    size and mask dilation must be the variant's. A set with fewer videos or frames than the published split
    is scored only with ``subset: true`` (recorded as ``subset``, never paired with published rows)."""
    base = data_root / spec.params["standardized"]
    name, root = base.name, base / variant
    fix = _standardized_fix(spec, name)
    report_path = base.parent / f"{name}-report.json"
    if not (root / "test.json").is_file() or not report_path.is_file():
        raise InputError(f"{root}: no standardized {variant!r} frames of benchmark {spec.name!r} "
                         f"(test.json or {report_path.name} missing)", fix=fix)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    prepared = (tuple(report.get("size") or ()), report.get("mask_dilation"), variant in (report.get("variants") or ()))
    if prepared != (tuple(params["size"]), params["standardized_dilation"], True):
        raise InputError(f"{report_path}: standardized at {report.get('size')} with mask dilation "
                         f"{report.get('mask_dilation')} and variants {report.get('variants')}; benchmark "
                         f"{spec.name!r} variant {variant!r} needs {list(params['size'])}, dilation "
                         f"{params['standardized_dilation']}", fix=f"standardize again with the defaults: {fix}")
    local = dataclasses.replace(spec, params={**spec.params, "root": str(root),
                                              "manifest": str(base.parent / f"{name}-{variant}.json")})
    manifest = load_checked_manifest(local, data_root)
    counts = json.loads((root / "test.json").read_text(encoding="utf-8"))
    if manifest.groups != counts:
        raise InputError(f"{root / 'test.json'}: its videos differ from the manifest's", fix=fix)
    published = (spec.params["videos"], spec.params["frames"])
    found = (len(counts), sum(counts.values()))
    subset = None
    if found != published:
        if not subset_requested(params, spec):
            raise InputError(f"{root}: {found[0]} video(s) / {found[1]} frame(s) standardized; benchmark {spec.name!r} "
                             f"({spec.split}) is {published[0]} videos / {published[1]} frames",
                             fix=f"standardize the complete split ({fix}), or score this reduced set explicitly "
                                 "with --subset (recorded as a subset, never paired with published rows)")
        subset = {"count": found[0], "of": published[0], "unit": "videos", "frames": found[1],
                  "of_frames": published[1], "ids": list(counts)}
    videos = [Video(video, tuple(root / "frames" / video / f"{i:05d}.png" for i in range(n)),
                    tuple(root / "masks" / video / f"{i:05d}.png" for i in range(n))) for video, n in counts.items()]
    return BenchmarkData(spec, variant, params, root, manifest, videos, VideoCompletion(params), subset=subset)


class VideoCompletion:
    """The task module of video completion (see ``triptych.tasks.TaskModule``).

    Scoring streams: ``measure`` holds two composited frames and their ground truth at a time, so a
    prediction folder of any length is scored in bounded memory. Only ``predict`` holds the whole
    video, because a method needs it.
    """

    def __init__(self, variant_params: dict[str, Any], scored: bool = True) -> None:
        self.size = tuple(variant_params["size"])
        self.dilation = int(variant_params["mask_dilation"])
        self.scored = scored

    def mask(self, path: Path) -> np.ndarray:
        """The variant's processed mask of one frame. When the frames are ``scored`` (a benchmark), a mask
        with no hole, or only hole, is refused; completing a user's video (``triptych inpaint``) takes any."""
        mask = process_mask(path, self.size, self.dilation)
        if not self.scored:
            return mask
        if not mask.any():
            raise InputError(f"{path}: the mask has no hole, so the frame would score as a perfect copy",
                             fix="fixed-mask protocols need a hole in every frame: fix or regenerate the mask")
        if mask.all():
            raise InputError(f"{path}: the mask covers the whole frame, so nothing is left to complete from",
                             fix="check the mask's polarity (255 or > 0 = hole) and regenerate it")
        return mask

    def predict(self, method: Any, video: Video) -> np.ndarray:
        """The method's completed frames as uint8 (T, H, W, 3), truncated as E2FGVI's evaluate.py does; a
        method with ``protocol_frames = True`` (its output is already the protocol's scored frame) keeps
        its float32 values in [0, 1].

        A method gets the whole video, unless it declares ``temporal_reach = r`` (an int: frame t's output
        depends only on frames t - r .. t + r). Then it is called on chunks of ``PREDICT_CHUNK`` target
        frames with r frames of context on each side, so a long video never sits in memory as float32
        at once; the output is the same as one call over the whole video.
        """
        reach = getattr(method, "temporal_reach", None)
        count = len(video.frames)
        if reach is None or count <= PREDICT_CHUNK + 2 * int(reach):
            return self._predict_range(method, video, 0, count, 0, count)
        reach = int(reach)
        chunks = []
        for start in range(0, count, PREDICT_CHUNK):
            stop = min(start + PREDICT_CHUNK, count)
            lo, hi = max(0, start - reach), min(count, stop + reach)
            chunks.append(self._predict_range(method, video, lo, hi, start, stop))
        return np.concatenate(chunks)

    def _predict_range(self, method: Any, video: Video, lo: int, hi: int, start: int, stop: int) -> np.ndarray:
        """Call the method on frames lo..hi-1 and keep the outputs of frames start..stop-1."""
        import torch  # only where a method runs: scoring a prediction folder never loads it

        frames = np.stack([process_frame(p, self.size) for p in video.frames[lo:hi]])
        masks = np.stack([self.mask(p) for p in video.masks[lo:hi]])
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
        m = torch.from_numpy(masks)[:, None].float()
        out = check_output(method.inpaint(x, m), tuple(x.shape), type(method).__name__, video.name)
        kept = out[start - lo:stop - lo].permute(0, 2, 3, 1).numpy()
        if getattr(method, "protocol_frames", False):
            # the method already truncated, composited and merged as the protocol does (E2FGVI's evaluate.py
            # scores the 0.5/0.5 merge of overlapping windows in float): its values are kept, in [0, 1]
            return np.clip(kept, 0.0, 1.0).astype(np.float32)
        return truncate(kept)

    def check_predictions(self, pred_dir: Path, videos: Sequence[Video]) -> None:
        """``pred_dir`` holds exactly one frame per ground-truth frame: anything else is named up front."""
        expected = {f"{v.name}/{f.stem}": PREDICTION_SUFFIXES for v in videos for f in v.frames}
        check_exact_files(pred_dir, expected, "--pred-dir", "<video>/<frame>.png")

    def read_prediction(self, pred_dir: Path, video: Video) -> list[Path]:
        """The prediction files of the video, checked to exist; each is read when it is scored."""
        if not (pred_dir / video.name).is_dir():
            raise InputError(f"--pred-dir {pred_dir}: no folder {video.name!r} for video {video.name!r}; the folder "
                             "may be laid out for another benchmark",
                             fix="video completion predictions go in <pred-dir>/<video>/<frame>.png")
        paths = []
        for frame in video.frames:
            candidates = [pred_dir / video.name / f"{frame.stem}{s}" for s in PREDICTION_SUFFIXES]
            path = next((c for c in candidates if c.is_file()), None)
            if path is None:
                raise InputError(f"{candidates[0]}: prediction missing for frame {frame.name} of video {video.name!r}",
                                 fix="write <pred-dir>/<video>/<frame>.png for every ground-truth frame")
            paths.append(path)
        return paths

    def _predicted_frame(self, prediction: np.ndarray | list[Path], t: int) -> np.ndarray:
        if isinstance(prediction, np.ndarray):
            return prediction[t]
        path = prediction[t]
        image = read_prediction(path)
        if image.dtype != np.uint8:
            raise InputError(f"{path}: inpainting predictions are 8-bit PNG frames", fix="save PNGs")
        if (image.shape[1], image.shape[0]) != self.size:
            raise InputError(f"{path}: prediction is {image.shape[1]}x{image.shape[0]}, the benchmark "
                             f"variant scores at {self.size[0]}x{self.size[1]}", fix="predict at the benchmark's resolution")
        return image

    def composite(self, video: Video, prediction: np.ndarray | list[Path], t: int) -> tuple[np.ndarray, np.ndarray]:
        """(composite, ground truth) of frame t: prediction * mask + gt * (1 - mask), the protocol's step."""
        gt = process_frame(video.frames[t], self.size)
        hole = self.mask(video.masks[t])[..., None]
        pred = self._predicted_frame(prediction, t)
        if pred.dtype != np.uint8:  # a method's protocol frames, float in [0, 1]: composite in [0, 1], float64
            return pred.astype(np.float64) * hole + (gt / 255.0) * (1 - hole), gt
        return pred * hole + gt * (1 - hole), gt

    def complete(self, method: Any, video: Video) -> Iterator[np.ndarray]:
        """The completed frames of a video as uint8 (H, W, 3) images, in frame order: the method's
        prediction (``predict``; protocol frames truncated to uint8 as well) composited with the variant's
        mask, the frame ``triptych score`` composites (what ``triptych inpaint`` writes)."""
        prediction = self.predict(method, video)
        if prediction.dtype != np.uint8:
            prediction = truncate(prediction)
        for t in range(len(video.frames)):
            yield self.composite(video, prediction, t)[0]

    def measure(self, video: Video, prediction: np.ndarray | list[Path], metrics: Sequence[MetricUse]) -> list[Score]:
        """Every requested metric from one decoding of each frame (docs/performance.md): frame t's ground
        truth, mask and prediction are read and composited once, its frame-level metrics scored then, and the
        video-level ones (E_warp, reading pairs t, t + 1 in order) read it from a ``FrameWindow`` of the
        last two frames, so memory stays bounded for a video of any length. The rows come in frame order,
        the video rows last."""
        if len(prediction) != len(video.frames):
            raise TriptychError(f"video {video.name!r}: {len(prediction)} predicted frames for {len(video.frames)}")
        per_frame = [m for m in metrics if m.spec.level != "video"]
        frame_scores: dict[int, list[Score]] = {}

        def make(t: int) -> tuple[np.ndarray, np.ndarray]:
            composite, gt = self.composite(video, prediction, t)
            if t not in frame_scores:
                sample_id = f"{video.name}/{video.frames[t].stem}"
                frame_scores[t] = [Score(sample_id, m, float(m(composite, gt)))
                                   for m in per_frame]
            return composite, gt

        window = FrameWindow(make)
        count = len(video.frames)
        video_scores = []
        for m in (m for m in metrics if m.spec.level == "video"):
            result = m(LazyFrames(count, lambda t: window[t][0]), LazyFrames(count, lambda t: window[t][1]))
            video_scores.append(Score(video.name, m, float(getattr(result, "value", result))))
        for t in range(count):
            if t not in frame_scores:
                make(t)
        return [score for t in range(count) for score in frame_scores[t]] + video_scores

    def _clip(self, video: Video, frame: Callable[[int], np.ndarray]) -> np.ndarray:
        """One video's frames as a (T, H, W, 3) clip: uint8, or float32 in [0, 1] for protocol frames."""
        frames = [frame(t) for t in range(len(video.frames))]
        if any(f.dtype != np.uint8 for f in frames):
            frames = [f.astype(np.float32) if f.dtype != np.uint8 else f.astype(np.float32) / 255.0 for f in frames]
        return np.stack(frames)

    def measure_set(self, videos: Sequence[Video], produce: Callable[[Video], Any],
                    metrics: Sequence[MetricUse]) -> list[Score]:
        """Set-level metrics (VFID): each video one clip pair, its ground truth and its composited frames
        (E2FGVI ``evaluate.py`` feeds ``comp_frames``), read one video at a time when the metric asks."""
        from triptych.metrics.vfid import ClipPair

        def pair(video: Video) -> ClipPair:
            real = functools.partial(self._clip, video, lambda t: process_frame(video.frames[t], self.size))

            def fake() -> np.ndarray:
                prediction = produce(video)
                return self._clip(video, lambda t: self.composite(video, prediction, t)[0])

            return ClipPair(video.name, real, fake)

        pairs = [pair(video) for video in videos]
        return [Score.from_result(SET_SAMPLE_ID, m, m(pairs)) for m in metrics]


class FrameWindow:
    """Frame t's (composite, ground truth), made by ``make(t)`` when first asked for and kept while it is one
    of the last ``size`` frames made: a pass over pairs (t, t + 1) in order makes each frame once."""

    def __init__(self, make: Callable[[int], tuple[np.ndarray, np.ndarray]], size: int = 2) -> None:
        self._make, self._size, self._kept = make, size, {}

    def __getitem__(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        if t not in self._kept:
            self._kept[t] = self._make(t)
            if len(self._kept) > self._size:
                del self._kept[next(iter(self._kept))]  # the oldest made (dicts keep insertion order)
        return self._kept[t]


class LazyFrames(SequenceABC):
    """A read-only sequence of frames produced on access (the last one kept, since pairwise metrics read
    each frame twice in a row)."""

    def __init__(self, count: int, read: Callable[[int], np.ndarray]) -> None:
        self._count, self._read, self._last = count, read, (-1, None)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, t):  # type: ignore[override]
        if isinstance(t, slice):
            return [self[i] for i in range(*t.indices(self._count))]
        if not -self._count <= t < self._count:
            raise IndexError(t)
        t %= self._count
        if self._last[0] != t:
            self._last = (t, self._read(t))
        return self._last[1]
