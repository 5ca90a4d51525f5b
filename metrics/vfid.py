"""VFID: the Fréchet distance between the I3D features of the ground-truth and the predicted videos.

docs/protocols/video_completion.md ("VFID"; E2FGVI @ 709cbe3 ``core/metrics.py``
``calculate_i3d_activations`` -> ``calculate_vfid``): each video (or clip) is fed whole to the I3D as
(1, 3, T, H, W) in [0, 1]; its feature is Mixed_5c averaged over T, H, W (``metrics/i3d.py``); VFID is the
Fréchet distance of the set of ground-truth features (real) and the set of predicted ones (fake)
(``metrics/frechet.py``). One value per set (``level: set``), lower is better.

Variants (``metrics/specs/vfid.yaml``): ``e2fgvi`` (BatchNorm with each clip's own statistics, as the
reference's never-``eval()``-ed model) and ``eval-bn`` (stored running statistics: very different numbers
from E2FGVI's, and DEVIL's VFID: MichiganCOG/video-inpainting-evaluation @ d339a12 ``vfid_computer.py`` runs
the same InceptionI3d in ``eval()`` on each composited video in [0, 1], and its
``extract_features(target_endpoints='Logits')`` returns ``x.mean(4).mean(3).mean(2)`` of Mixed_5c, this
feature; ``vfid_clips_computer.py`` is the same over 10-frame windows, stride 1). The pretrained weights are the registry's ``i3d_rgb_imagenet``, or a file passed
with ``--weights`` (recorded as user-supplied unless its sha256 matches a registry pin).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Union

import numpy as np
import torch

from triptych.errors import InputError
from triptych.metrics.frechet import FrechetResult, frechet_distance
from triptych.metrics.i3d import InceptionI3d, i3d_features, load_i3d

Clip = Union[np.ndarray, torch.Tensor]
ClipSource = Union[Clip, Callable[[], Clip]]  # a clip, or a function that reads it when it is needed


@dataclass(frozen=True)
class ClipPair:
    """One sample of the set: a ground-truth clip and the predicted clip at the same place."""

    clip_id: str
    real: ClipSource
    fake: ClipSource


@dataclass(frozen=True)
class VfidResult:
    value: float
    frechet: FrechetResult
    clip_ids: tuple[str, ...]
    real_features: np.ndarray  # (n, 1024) float32
    fake_features: np.ndarray
    batch_stats: bool
    weights: dict[str, Any] = field(default_factory=dict)  # provenance of the I3D weights (with state_sha256)

    def extras(self) -> dict[str, Any]:
        """What a result's ``extras`` records: covariance ranks, the exact low-rank value and its relative
        difference, the Fréchet components, the BatchNorm mode and the per-clip feature norms."""
        exact = self.frechet.exact_lowrank
        return {
            **{k: v for k, v in self.frechet.extras().items() if k != "value"},  # the value is the aggregate
            "exact_lowrank_rel_diff": abs(self.value - exact) / abs(exact) if exact != 0 else None,
            "batchnorm": "per-clip batch statistics (train mode)" if self.batch_stats else "running statistics (eval)",
            "input_range": "[0, 1]",
            "clips": list(self.clip_ids),
            "feature_norms": {cid: {"gt": float(np.linalg.norm(r.astype(np.float64))),
                                    "pred": float(np.linalg.norm(f.astype(np.float64)))}
                              for cid, r, f in zip(self.clip_ids, self.real_features, self.fake_features)},
        }


def _materialise(source: ClipSource) -> Clip:
    return source() if callable(source) else source


# Peak memory of one I3D forward grows linearly with the clip: measured on CPU, float32, torch 2.14, no_grad,
# 432x240 frames, T = 24 / 48 / 96 -> peak RSS +852 / +1067 / +1558 MiB over the loaded model, i.e. about
# 10.2 MiB per frame, 98 bytes per pixel per frame (the 64-channel T/2 x H/2 x W/2 activations of
# Conv3d_1a_7x7 and the padded copies around them dominate). A DAVIS video (<= 104 frames) needs ~1.1 GiB, a
# 1,000-frame video ~10 GiB: by protocol the whole video is one forward (E2FGVI calculate_i3d_activations).
I3D_BYTES_PER_PIXEL_FRAME = 100
I3D_FIXED_BYTES = 300 * 2**20  # the rest of the forward's working set, measured with the above
MEMORY_ENV = "TRIPTYCH_VFID_MEMORY_BYTES"  # overrides the memory VFID may use (default: what is available)


def available_memory_bytes(device: str) -> int:
    """Bytes the I3D forward may use: ``TRIPTYCH_VFID_MEMORY_BYTES``, else free CUDA memory on a GPU, else
    the kernel's MemAvailable (Linux), else no limit."""
    if os.environ.get(MEMORY_ENV):
        return int(os.environ[MEMORY_ENV])
    if device.startswith("cuda"):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2**63 - 1


def i3d_memory_bytes(frames: int, height: int, width: int) -> int:
    """The estimated peak memory of one I3D forward over a (frames, height, width) clip (constants above)."""
    return I3D_FIXED_BYTES + I3D_BYTES_PER_PIXEL_FRAME * frames * height * width


def check_clip_fits(clip: Clip, what: str, device: str) -> None:
    """Refuse, before any compute, a clip whose whole-clip I3D forward would not fit in memory."""
    t, h, w = (clip.shape[0], clip.shape[1], clip.shape[2]) if clip.shape[-1] == 3 else clip.shape[-3:]
    need, have = i3d_memory_bytes(int(t), int(h), int(w)), available_memory_bytes(device)
    if need > have:
        raise InputError(
            f"VFID: {what} has {t} frames of {w}x{h}; the protocol feeds each video whole to I3D, which needs "
            f"about {need / 2**30:.1f} GiB ({I3D_BYTES_PER_PIXEL_FRAME} bytes per pixel per frame), but only "
            f"{have / 2**30:.1f} GiB is available on {device}",
            fix="run on a machine with more memory, or cut clips with --clip-len / --clip-stride (a different "
                f"protocol: report the clip length); {MEMORY_ENV} sets the limit")


class FeatureCache:
    """I3D features keyed by the loaded weights' state hash, the BatchNorm mode and the clip's exact content.

    The network is never changed by a forward pass (``metrics/i3d.py``), so equal keys mean the same
    computation: a benchmark's ground-truth clips are computed once per process however many methods are
    scored against them. Without a state hash nothing is cached. At most ``max_entries`` (4 KB each).
    """

    def __init__(self, max_entries: int = 20000) -> None:
        self.max_entries = max_entries
        self._store: OrderedDict[tuple[str, str, bool, str], np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._store)

    @staticmethod
    def content_key(clip: Clip) -> str:
        array = clip.detach().cpu().numpy() if isinstance(clip, torch.Tensor) else np.asarray(clip)
        digest = hashlib.sha256(np.ascontiguousarray(array).tobytes())
        digest.update(f"{array.dtype.str}{array.shape}{type(clip).__name__}".encode())
        return digest.hexdigest()

    def features(self, source: ClipSource, model: InceptionI3d, *, batch_stats: bool,
                 state_sha256: str | None) -> np.ndarray:
        clip = _materialise(source)
        if state_sha256 is None:
            return i3d_features(clip, model, batch_stats=batch_stats)
        device = str(next(model.parameters()).device)  # CPU and CUDA float32 differ in the last bits
        key = (state_sha256, device, batch_stats, self.content_key(clip))
        if key in self._store:
            self._store.move_to_end(key)
            return self._store[key].copy()
        value = i3d_features(clip, model, batch_stats=batch_stats)
        self._store[key] = value.copy()
        while len(self._store) > self.max_entries:
            self._store.popitem(last=False)
        return value


FEATURES = FeatureCache()  # the process-wide cache that ``vfid`` uses by default


def clip_features(pairs: Iterable[ClipPair], model: InceptionI3d, *, batch_stats: bool,
                  state_sha256: str | None = None, cache: FeatureCache | None = None
                  ) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """I3D features of every clip pair, one clip in memory at a time: (ids, real (n, 1024), fake (n, 1024)).

    With a ``cache`` and the model's ``state_sha256`` (taken at load), features already computed for the
    same weights, mode and clip content are reused."""
    device = str(next(model.parameters()).device)

    def features(source: ClipSource, what: str) -> np.ndarray:
        clip = _materialise(source)
        check_clip_fits(clip, what, device)
        if cache is None:
            return i3d_features(clip, model, batch_stats=batch_stats)
        return cache.features(clip, model, batch_stats=batch_stats, state_sha256=state_sha256)

    ids: list[str] = []
    real: list[np.ndarray] = []
    fake: list[np.ndarray] = []
    for pair in pairs:
        ids.append(pair.clip_id)
        real.append(features(pair.real, f"ground-truth clip {pair.clip_id!r}"))
        fake.append(features(pair.fake, f"predicted clip {pair.clip_id!r}"))
    if len(ids) < 2:
        raise InputError(f"VFID needs at least two videos (or clips), got {len(ids)}",
                         fix="score a folder with one sub-folder per video, or cut clips with --clip-len / "
                             "--clip-stride")
    return tuple(ids), np.stack(real), np.stack(fake)


def vfid_from_features(real: np.ndarray, fake: np.ndarray) -> FrechetResult:
    """VFID of precomputed features: E2FGVI ``calculate_vfid(real, fake)`` (see ``frechet.py``)."""
    return frechet_distance(real, fake)


def vfid(pairs: Iterable[ClipPair], *, batch_stats: bool, weights: str | Path | None = None,
         model: InceptionI3d | None = None, record: dict[str, Any] | None = None,
         cache: FeatureCache | None = FEATURES) -> VfidResult:
    """VFID of a set of (ground truth, prediction) clips; the registry entry's callable.

    ``model`` (with its provenance ``record``) skips loading; otherwise ``load_i3d(weights)`` loads the
    registered ``i3d_rgb_imagenet`` (``weights=None``) or the given file, hashing it before any forward.
    Features are reused from ``cache`` when ``record["state_sha256"]`` identifies the weights.
    """
    if model is None:
        model, record = load_i3d(weights, _default_device())
    state = (record or {}).get("state_sha256")
    ids, real, fake = clip_features(pairs, model, batch_stats=batch_stats, state_sha256=state, cache=cache)
    result = vfid_from_features(real, fake)
    return VfidResult(result.value, result, ids, real, fake, batch_stats, dict(record or {}))


def _default_device() -> str:
    """CUDA when present (TF32 is switched off around each forward, see ``i3d_features``), else CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"
