"""Frame interpolation benchmarks: the frame at time t between two inputs, held out and scored.

Scoring follows AMT @ 70f988f ``benchmarks/*.py`` (docs/protocols/frame_interpolation.md): frames read as RGB
uint8 / 255, the method's float output passed to the metrics without rounding, PSNR and SSIM per
triplet, the dataset figure the mean over triplets. Each triplet carries its time ``t`` (0.5 for the
2x sets, k / 8 for the x8 sets), which the method receives.

A benchmark variant is the reference script's data preparation and invocation:
- ``prepare``: applied alike to both inputs and the ground truth before the method and the metrics see
  them: ``{op: resize_area, size: [W, H]}`` (xiph.py 2K: cv2 INTER_AREA), ``{op: crop_margins,
  margins: [rows, cols]}`` (xiph.py 4K: ``img[540:-540, 1024:-1024]``) or ``{op: center_crop, size: [W,
  H]}`` (the x8 sets' ``center_crop_woflow``: rows ``ih//2 - h//2 : ih//2 + h//2``);
- ``pad_divisor`` / ``pad_mode`` / ``scale_factor``: the model invocation, handed to the method factory
  by ``triptych.methods.build_method`` (AMT's ``InputPadder`` pads by replication, the one mode offered).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from triptych.errors import InputError, TriptychError
from triptych.folders import check_exact_files, contained, relative_entry, visible_entries
from triptych.manifests import check_folders_listed
from triptych.media import Pair, check_same_size, read_prediction, read_rgb
from triptych.methods import check_output
from triptych.registry import BenchmarkSpec
from triptych.schema import loader_schema
from triptych.tasks import BenchmarkData, load_checked_manifest, MetricUse, Score, subset_requested

PAD_MODES = (None, "replicate")
PREDICTION_SUFFIXES = (".png", ".npy")
# The keys of a variant (module docstring); the ones the model call takes are handed to the method's factory.
VFI_VARIANT = (("pad_divisor", "scale_factor"), ("prepare", "pad_mode", "subset"))
VFI_INVOCATION = ("pad_divisor", "scale_factor")


@dataclass(frozen=True)
class Triplet:
    sample_id: str  # relative id of the ground-truth frame, e.g. "tennis/00011"
    frame0: Path
    gt: Path
    frame1: Path
    t: float = 0.5


@dataclass(frozen=True)
class FramePreparation:
    """A variant's ``prepare`` entry (see the module docstring); ``op`` None leaves frames as read."""

    op: str | None = None
    size: tuple[int, int] | None = None  # (width, height)
    margins: tuple[int, int] | None = None  # (rows cut top and bottom, columns cut left and right)

    @classmethod
    def from_params(cls, params: dict[str, Any] | None, where: str) -> FramePreparation:
        if not params:
            return cls()
        op = params.get("op")
        size = tuple(params["size"]) if "size" in params else None
        margins = tuple(params["margins"]) if "margins" in params else None
        needs = {"resize_area": size, "center_crop": size, "crop_margins": margins}
        if op not in needs or needs[op] is None or len(needs[op]) != 2:
            raise TriptychError(f"{where}: prepare {params!r} is not one of {{op: resize_area, size: [W, H]}}, "
                                "{op: center_crop, size: [W, H]}, {op: crop_margins, margins: [rows, cols]}",
                                fix="fix the benchmark variant in benchmarks/specs")
        return cls(op, size, margins)  # type: ignore[arg-type]

    def __call__(self, image: np.ndarray, path: Path) -> np.ndarray:
        h, w = image.shape[:2]
        if self.op == "resize_area":
            import cv2

            return cv2.resize(image, dsize=self.size, interpolation=cv2.INTER_AREA)
        if self.op == "crop_margins":
            rows, cols = self.margins  # type: ignore[misc]
            if h <= 2 * rows or w <= 2 * cols:
                raise InputError(f"{path}: {w}x{h} frame cannot lose {rows} rows and {cols} columns on each side",
                                 fix="use the full-resolution frames this benchmark expects")
            return image[rows:h - rows, cols:w - cols]
        if self.op == "center_crop":
            cw, ch = self.size  # type: ignore[misc]
            if h < ch or w < cw:
                raise InputError(f"{path}: {w}x{h} frame is smaller than the {cw}x{ch} centre crop",
                                 fix="use the full-resolution frames this benchmark expects")
            top, left = h // 2 - ch // 2, w // 2 - cw // 2
            return image[top:top + ch, left:left + cw]
        return image


def _check_invocation(spec: BenchmarkSpec, variant: str, params: dict[str, Any]) -> None:
    mode = params.get("pad_mode")
    if mode not in PAD_MODES or (mode is None) != (params.get("pad_divisor") is None):
        raise TriptychError(f"{spec.source} variant {variant!r}: pad_mode {mode!r} with pad_divisor "
                            f"{params.get('pad_divisor')!r}",
                            fix="give pad_mode replicate with a divisor, null without")


@loader_schema(variant=VFI_VARIANT, params=(("root", "manifest", "video", "centers"), ("name",)),
               invocation=VFI_INVOCATION)
def load_video_triplets(spec: BenchmarkSpec, variant: str, params: dict[str, Any], data_root: Path) -> BenchmarkData:
    """Triplets cut from one video folder: for each centre c in ``params.centers``, (c-1, c, c+1)."""
    root = data_root / spec.params["root"]
    manifest = load_checked_manifest(spec, data_root)
    folder = contained(root, spec.params["video"], f"benchmark {spec.name!r} video")
    frames = [p for p in visible_entries(folder) if p.suffix.lower() == ".png"] if folder.is_dir() else []
    check_folders_listed(manifest, root, [folder] if folder.is_dir() else [])
    name = spec.params.get("name", folder.parent.name)
    _check_invocation(spec, variant, params)
    triplets = []
    for c in spec.params["centers"]:
        if not 1 <= c < len(frames) - 1:
            raise InputError(f"{folder}: triplet centre {c} needs frames {c - 1}..{c + 1}, found {len(frames)} frames")
        triplets.append(Triplet(f"{name}/{frames[c].stem}", frames[c - 1], frames[c], frames[c + 1]))
    return BenchmarkData(spec, variant, params, root, manifest, triplets,
                         FrameInterpolation(FramePreparation.from_params(params.get("prepare"), spec.source)))


@loader_schema(variant=VFI_VARIANT, params=(("listing", "layout", "triplets"), ("dataset",)),
               invocation=VFI_INVOCATION)
def load_listed_triplets(spec: BenchmarkSpec, variant: str, params: dict[str, Any], data_root: Path) -> BenchmarkData:
    """A published test set, from the listing that the ``standardize_vfi`` stage wrote
    (``<data root>/<params.listing>``): its layout and triplet count must be the benchmark's, its
    manifest must match the listing and the files under the listed root."""
    _check_invocation(spec, variant, params)
    listing_path = data_root / spec.params["listing"]
    dataset, layout, expected = spec.params.get("dataset", spec.name), spec.params["layout"], spec.params["triplets"]
    build = (f"in params.yaml set standardize_vfi name: {dataset}, layout: {layout}, root: <your folder>, then "
             "run 'dvc repro standardize_vfi' (or 'dvc exp run -S standardize_vfi.name=... standardize_vfi'); "
             "see datasets/cards/vfi.md")
    if not listing_path.is_file():
        raise InputError(f"{listing_path}: no triplet listing for benchmark {spec.name!r}", fix=build)
    try:
        listing = json.loads(listing_path.read_text(encoding="utf-8"))
        count = len(listing["triplets"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{listing_path}: corrupt triplet listing ({exc!r})", fix=f"rebuild it: {build}") from exc
    if (listing["name"], listing["layout"]) != (dataset, layout):
        raise InputError(f"{listing_path}: lists triplets of {listing['name']!r} in layout {listing['layout']!r}; "
                         f"benchmark {spec.name!r} needs {dataset!r} in layout {layout!r}", fix=build)
    subset = _listing_subset(listing, expected)
    if subset is not None and not subset_requested(params, spec):
        raise InputError(f"{listing_path}: lists {count} triplet(s) of {listing['name']!r}"
                         + (f"; benchmark {spec.name!r} needs {expected} triplets" if expected else
                            f", a subset ({'; '.join(subset.get('notes') or []) or 'frames missing'})"),
                         fix=f"rebuild it from the complete test set: {build}; or score this reduced set explicitly "
                             "with --subset (recorded as a subset, never paired with published rows)")
    listing_dir = listing_path.resolve().parent
    root = (listing_dir / listing["root"]).resolve()
    local = dataclasses.replace(spec, params={**spec.params, "root": str(root),
                                              "manifest": str(listing_dir / listing["manifest"])})
    manifest = load_checked_manifest(local, data_root)
    if manifest.sha256 != listing["manifest_sha256"]:
        raise InputError(f"{listing_path}: its manifest changed after the listing was written", fix=build)
    triplets = [Triplet(t["sample_id"], *(contained(root, t[k], f"{listing_path} triplet {t['sample_id']!r}")
                                          for k in ("frame0", "gt", "frame1")), float(t["t"]))
                for t in listing["triplets"]]
    for t in triplets:  # a sample id becomes a path under --pred-dir
        relative_entry(t.sample_id, f"{listing_path} sample_id")
    return BenchmarkData(spec, variant, params, root, manifest, triplets,
                         FrameInterpolation(FramePreparation.from_params(params.get("prepare"), spec.source)),
                         subset=subset)


def _listing_subset(listing: dict[str, Any], expected: int | None) -> dict[str, Any] | None:
    """The reduced set a listing holds (``subset: {count, of, unit, ...}``), or None for the complete set:
    one the stage recorded as a subset, or one with another count than the published ``expected``."""
    count = len(listing["triplets"])
    recorded = listing.get("subset")
    if recorded:
        return {**recorded, "of": expected or recorded.get("of")}
    if expected not in (None, count):
        return {"count": count, "of": expected, "unit": "triplets"}
    return None


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """A uint8 (H, W, 3) frame as a method receives it: float32 (3, H, W) = uint8 / 255 (AMT ``img2tensor``)."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0  # AMT img2tensor


@dataclass(frozen=True)
class FrameInterpolation:
    """The task module of frame interpolation (see ``triptych.tasks.TaskModule``)."""

    prepare: FramePreparation = field(default_factory=FramePreparation)

    def read(self, path: Path) -> np.ndarray:
        """A frame as the method and the metrics see it: uint8 RGB after the variant's preparation."""
        return self.prepare(read_rgb(path), path)

    def predict(self, method: Any, triplet: Triplet) -> np.ndarray:
        f0, f1 = to_tensor(self.read(triplet.frame0)), to_tensor(self.read(triplet.frame1))
        out = check_output(method.interpolate(f0, f1, triplet.t), tuple(f0.shape), type(method).__name__,
                           triplet.sample_id)
        return out.permute(1, 2, 0).numpy()  # float32 HWC, unrounded, unclamped: the metric variant decides

    def check_predictions(self, pred_dir: Path, triplets: Sequence[Triplet]) -> None:
        """``pred_dir`` holds exactly one prediction per triplet: anything else is named up front."""
        check_exact_files(pred_dir, {t.sample_id: PREDICTION_SUFFIXES for t in triplets}, "--pred-dir",
                          "<ground-truth relative path>.png or .npy")

    def read_prediction(self, pred_dir: Path, triplet: Triplet) -> np.ndarray:
        contained(pred_dir, triplet.sample_id, f"triplet {triplet.sample_id!r}")
        if not (pred_dir / triplet.sample_id).parent.is_dir():
            raise InputError(f"--pred-dir {pred_dir}: no folder {Path(triplet.sample_id).parent.as_posix()!r} for "
                             f"triplet {triplet.sample_id!r}; the folder may be laid out for another benchmark",
                             fix="interpolation predictions go at the ground-truth frame's relative path, "
                                 f"e.g. <pred-dir>/{triplet.sample_id}.png")
        candidates = [pred_dir / f"{triplet.sample_id}{s}" for s in PREDICTION_SUFFIXES]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise InputError(f"{candidates[0]}: prediction missing for triplet {triplet.sample_id!r}",
                             fix="write <pred-dir>/<ground-truth relative path>.png (or .npy float32 CHW)")
        prediction = read_prediction(path)
        check_same_size(prediction, self.read(triplet.gt), Pair(triplet.sample_id, path, triplet.gt))
        return prediction

    def measure(self, triplet: Triplet, prediction: np.ndarray, metrics: Sequence[MetricUse]) -> list[Score]:
        gt = self.read(triplet.gt)
        return [Score(triplet.sample_id, m, float(m(prediction, gt))) for m in metrics]
