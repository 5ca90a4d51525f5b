"""Frame interpolation benchmarks: triplets (t-1, t, t+1) with the middle frame held out.

Scoring follows AMT @ 70f988f ``benchmarks/*.py`` (protocols.md section 2): frames read as RGB
uint8 / 255, the method's float output passed to the metrics without rounding, PSNR and SSIM per
triplet, the dataset figure the mean over triplets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from triptych.errors import InputError
from triptych.media import Pair, check_same_size, read_prediction, read_rgb
from triptych.methods import check_output
from triptych.registry import BenchmarkSpec
from triptych.scoring import BenchmarkData, load_checked_manifest, MetricUse, Score


@dataclass(frozen=True)
class Triplet:
    sample_id: str  # relative id of the ground-truth frame, e.g. "tennis/00011"
    frame0: Path
    gt: Path
    frame1: Path
    t: float = 0.5


def load_video_triplets(spec: BenchmarkSpec, variant: str, params: dict[str, Any], data_root: Path) -> BenchmarkData:
    """Triplets cut from one video folder: for each centre c in ``params.centers``, (c-1, c, c+1)."""
    root = data_root / spec.params["root"]
    manifest = load_checked_manifest(spec, data_root)
    folder = root / spec.params["video"]
    frames = sorted(folder.glob("*.png"))
    name = spec.params.get("name", folder.parent.name)
    triplets = []
    for c in spec.params["centers"]:
        if not 1 <= c < len(frames) - 1:
            raise InputError(f"{folder}: triplet centre {c} needs frames {c - 1}..{c + 1}, found {len(frames)} frames")
        triplets.append(Triplet(f"{name}/{frames[c].stem}", frames[c - 1], frames[c], frames[c + 1]))
    return BenchmarkData(spec, variant, params, root, manifest, triplets, FrameInterpolation())


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255.0  # AMT img2tensor


class FrameInterpolation:
    """The task module of frame interpolation (see ``triptych.scoring.TaskModule``)."""

    def predict(self, method: Any, triplet: Triplet) -> np.ndarray:
        f0, f1 = _to_tensor(read_rgb(triplet.frame0)), _to_tensor(read_rgb(triplet.frame1))
        out = check_output(method.interpolate(f0, f1, triplet.t), tuple(f0.shape), type(method).__name__,
                           triplet.sample_id)
        return out.permute(1, 2, 0).numpy()  # float32 HWC, unrounded, unclamped: the metric variant decides

    def read_prediction(self, pred_dir: Path, triplet: Triplet) -> np.ndarray:
        if not (pred_dir / triplet.sample_id).parent.is_dir():
            raise InputError(f"--pred-dir {pred_dir}: no folder {Path(triplet.sample_id).parent.as_posix()!r} for "
                             f"triplet {triplet.sample_id!r}; the folder may be laid out for another benchmark",
                             fix="interpolation predictions go at the ground-truth frame's relative path, "
                                 f"e.g. <pred-dir>/{triplet.sample_id}.png")
        candidates = [pred_dir / f"{triplet.sample_id}{s}" for s in (".png", ".npy")]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise InputError(f"{candidates[0]}: prediction missing for triplet {triplet.sample_id!r}",
                             fix="write <pred-dir>/<ground-truth relative path>.png (or .npy float32 CHW)")
        prediction = read_prediction(path)
        check_same_size(prediction, read_rgb(triplet.gt), Pair(triplet.sample_id, path, triplet.gt))
        return prediction

    def measure(self, triplet: Triplet, prediction: np.ndarray, metrics: Sequence[MetricUse]) -> list[Score]:
        gt = read_rgb(triplet.gt)
        return [Score(triplet.sample_id, m, float(m.fn(prediction, gt, **m.variant.params))) for m in metrics]
