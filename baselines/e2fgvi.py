"""E2FGVI and E2FGVI-HQ (Li et al., CVPR 2022): a checkpoint-compatible port and its video completion method.

Reference: MCG-NKU/E2FGVI @ 709cbe3, ``model/e2fgvi.py`` and ``model/e2fgvi_hq.py`` (``InpaintGenerator``);
the blocks are in ``triptych.baselines.e2fgvi_blocks``. The released checkpoints ``E2FGVI-CVPR22.pth`` and
``E2FGVI-HQ-CVPR22.pth`` are plain state dicts (container key none) whose keys, order and shapes equal
``E2FGVI(hq).state_dict()``: 243 / 244 entries, 41,799,743 / 41,117,887 parameters including the SPyNet
flow-completion module (docs/protocols/video_completion.md, "Checkpoints"; fixture key lists
``e2fgvi_keys.json`` / ``e2fgvi_hq_keys.json``).

Forward (``InpaintGenerator.forward(masked_frames, num_local_frames)``), frames in [-1, 1], holes zeroed:

1. flow completion: the local frames mapped to [0, 1], resized to 1/4 (bilinear, ``align_corners=True``),
   SPyNet flows between consecutive local frames, forward (t -> t+1) and backward (t+1 -> t);
2. the encoder gives 128 channels at 1/4 for every frame; the local frames' features are propagated
   (``BidirectionalPropagation``), the reference frames' are not;
3. soft split into 7x7 tokens (stride 3), 8 temporal focal transformer blocks, soft composition; the
   result is added to the features;
4. the decoder and ``tanh`` give every frame in [-1, 1] (references included; the protocol keeps the local ones).

The only difference of E2FGVI-HQ is the soft composition (a 3x3 conv instead of a 60x108 bias map), so
it accepts any size whose 1/4 token grid is whole 5x9 windows; test.py mirror-pads frames to multiples of
60x108 for it and crops the output, as ``E2FGVIInpainter`` does. E2FGVI itself runs at 432x240 only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from triptych.baselines.e2fgvi_blocks import (
    BidirectionalPropagation,
    Encoder,
    SoftComp,
    SoftSplit,
    SPyNet,
    TemporalFocalTransformerBlock,
    build_decoder,
    token_grid,
)
from triptych.baselines.inpainting import frames_to_uint8, masks_to_holes
from triptych.baselines.precision import autocast, check_precision
from triptych.baselines.video_window import NEIGHBOR_STRIDE, REF_STRIDE, complete_video
from triptych.errors import InputError, TriptychError
from triptych.weights import state_mismatch

CHANNELS = 128
HIDDEN = 512
DEPTH = 8
TRAIN_SIZE = (240, 432)  # (H, W) of E2FGVI's bias map x 4: the only size E2FGVI runs at
HQ_PAD_MULTIPLE = (60, 108)  # test.py's mirror padding for E2FGVI-HQ
WEIGHTS = {False: "e2fgvi", True: "e2fgvi_hq"}
NAMES = {False: "E2FGVI", True: "E2FGVI-HQ"}


class E2FGVI(nn.Module):
    """The generator; ``hq`` selects E2FGVI-HQ. Module names are the checkpoint's top-level keys."""

    def __init__(self, hq: bool = False) -> None:
        super().__init__()
        self.hq = hq
        self.name = NAMES[hq]
        self.encoder = Encoder()
        self.decoder = build_decoder()
        self.feat_prop_module = BidirectionalPropagation(CHANNELS)
        self.ss = SoftSplit(CHANNELS, HIDDEN)
        self.sc = SoftComp(CHANNELS, HIDDEN, None if hq else (TRAIN_SIZE[0] // 4, TRAIN_SIZE[1] // 4))
        self.transformer = nn.ModuleList(TemporalFocalTransformerBlock(HIDDEN) for _ in range(DEPTH))
        self.update_spynet = SPyNet()

    def check_size(self, h: int, w: int) -> None:
        """E2FGVI: exactly 432x240. HQ: sides multiples of 4 whose token grid is whole 5x9 windows."""
        if not self.hq and (h, w) != TRAIN_SIZE:
            raise InputError(f"E2FGVI runs at 432x240 only (its soft composition adds a learned 60x108 bias map); "
                             f"the frames are {w}x{h}",
                             fix="resize to 432x240 (the e2fgvi benchmark variant does), or use e2fgvi-hq")
        rows, cols = token_grid((h // 4, w // 4))
        if h % 4 or w % 4 or rows % 5 or cols % 9:
            raise InputError(f"{self.name}: a {w}x{h} input does not give whole 5x9 attention windows",
                             fix="mirror-pad to multiples of 108x60 as test.py does (E2FGVIInpainter does this)")

    def flows(self, local: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Local frames (B, L, 3, H, W) in [0, 1] -> forward and backward flows (B, L - 1, 2, H/4, W/4)."""
        b, t, c, h, w = local.shape
        small = F.interpolate(local.reshape(-1, c, h, w), scale_factor=0.25, mode="bilinear", align_corners=True,
                              recompute_scale_factor=True)
        small = small.view(b, t, c, h // 4, w // 4)
        first = small[:, :-1].reshape(-1, c, h // 4, w // 4)
        second = small[:, 1:].reshape(-1, c, h // 4, w // 4)
        forward = self.update_spynet(first, second).view(b, t - 1, 2, h // 4, w // 4)
        backward = self.update_spynet(second, first).view(b, t - 1, 2, h // 4, w // 4)
        return forward, backward

    def forward(self, masked_frames: torch.Tensor, num_local_frames: int
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``masked_frames`` (B, T, 3, H, W) in [-1, 1] (holes zeroed), local frames first ->
        (frames (B*T, 3, H, W) in [-1, 1], (forward flows, backward flows))."""
        b, t, c, h, w = masked_frames.shape
        self.check_size(h, w)
        if not 2 <= num_local_frames <= t:
            raise InputError(f"{self.name}: num_local_frames={num_local_frames} for a window of {t} frames",
                             fix="give at least two local frames (flows link consecutive local frames)")
        flows = self.flows((masked_frames[:, :num_local_frames] + 1) / 2)
        enc = self.encoder(masked_frames.view(b * t, c, h, w))
        _, fc, fh, fw = enc.shape
        enc = enc.view(b, t, fc, fh, fw)
        local = self.feat_prop_module(enc[:, :num_local_frames], flows[0], flows[1])
        enc = torch.cat((local, enc[:, num_local_frames:]), dim=1)
        tokens = self.ss(enc.view(-1, fc, fh, fw), b)
        for block in self.transformer:
            tokens = block(tokens, (fh, fw))
        enc = enc + self.sc(tokens, t, (fh, fw)).view(b, t, -1, fh, fw)
        # channels-last: the decoder's convolutions at 1/2 and full resolution run about 1.5x faster on CPU
        out = torch.tanh(self.decoder(enc.view(b * t, fc, fh, fw).contiguous(memory_format=torch.channels_last)))
        return out, flows


def load_e2fgvi_state(model: E2FGVI, state: Mapping[str, torch.Tensor], source: str = "state dict") -> None:
    """Load ``state`` strictly; a missing, extra or mis-shaped key is a ``TriptychError`` that names it."""
    expected = model.state_dict()
    mismatch = state_mismatch(expected, state)
    if mismatch:
        other = NAMES[not model.hq]
        hint = (f"; it looks like an {other} checkpoint: use that method instead"
                if ("sc.bias" in state) != ("sc.bias" in expected) else "")
        raise TriptychError(f"{source} does not fit {model.name} ({len(expected)} keys): " + mismatch.describe(),
                            fix=f"pass {'E2FGVI-HQ-CVPR22.pth' if model.hq else 'E2FGVI-CVPR22.pth'} (a plain state "
                                f"dict) or a state dict saved from this port{hint}")
    model.load_state_dict(dict(state), strict=True)


def load_weights(model: E2FGVI, weights: str | None) -> dict[str, Any]:
    """Load the released checkpoint (``weights=None``: the registry entry, through the weights manager,
    which names the file, its URL and the import command when it is missing) or a user file (a plain
    ``.pth`` / ``.pt`` / ``.bin`` state dict or ``.safetensors``) strictly; returns the run's provenance."""
    from triptych import weights as registry_weights

    if weights is None:
        name = WEIGHTS[model.hq]
        spec = registry_weights.get_spec(name)
        path = registry_weights.resolve(name)
        load_e2fgvi_state(model, registry_weights.load_state_dict(path, spec.container_key),
                          f"weights {name!r} ({path})")
        return registry_weights.describe(name)
    path = Path(weights).expanduser()
    load_e2fgvi_state(model, registry_weights.load_state_dict(path), str(path))
    return registry_weights.describe_user_file(path)


def mirror_pad(x: torch.Tensor, multiple: tuple[int, int]) -> torch.Tensor:
    """test.py's padding of (..., H, W) up to multiples of ``multiple``: append the frame flipped along the
    axis, then crop (so the pad mirrors the last rows / columns, edge row included)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple[0], (-w) % multiple[1]
    if ph > h or pw > w:
        raise InputError(f"a {w}x{h} frame is too small to mirror-pad to multiples of {multiple[1]}x{multiple[0]}",
                         fix="use frames at least half that size")
    x = torch.cat([x, torch.flip(x, [-2])], -2)[..., :h + ph, :]
    return torch.cat([x, torch.flip(x, [-1])], -1)[..., :w + pw]


class E2FGVIInpainter:
    """``triptych.methods.Inpainter``: E2FGVI's test protocol (``triptych.baselines.video_window``) over
    the model, on ``device`` (default: CUDA when available, else CPU), at ``precision`` (fp32, or bf16 / fp16
    under autocast: ``triptych.baselines.precision``).

    Returned frames: the merged composites ``c`` (quarter steps in [0, 255], module ``video_window``) as
    ``c / 255``. ``protocol_frames`` tells the harness that they already are the frames E2FGVI's
    evaluate.py scores (truncated, composited, merged in float), so it keeps them instead of truncating
    again: a pixel where two windows disagree by an odd amount is scored at its half (or quarter) value.
    """

    protocol_frames = True

    def __init__(self, model: E2FGVI, weights: dict[str, Any] | None = None, neighbor_stride: int = NEIGHBOR_STRIDE,
                 ref_stride: int = REF_STRIDE, device: str | None = None, precision: str = "fp32") -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        check_precision(precision, self.device, model.name)
        self.precision = precision
        self.model = model.eval().requires_grad_(False).to(self.device)
        self.weights = weights
        self.neighbor_stride = neighbor_stride
        self.ref_stride = ref_stride

    def window(self, frames: torch.Tensor, masks: torch.Tensor, num_local: int) -> torch.Tensor:
        """``video_window.WindowModel``: mask the frames (``frames * (1 - masks)``), mirror-pad for HQ,
        run the generator, crop; (n, 3, H, W) float32 in [-1, 1] on the CPU."""
        h, w = frames.shape[-2:]
        masked = frames * (1 - masks)
        if self.model.hq:
            masked = mirror_pad(masked, HQ_PAD_MULTIPLE)
        with torch.inference_mode(), autocast(self.precision, self.device):
            pred, _ = self.model(masked.to(self.device), num_local)
        return pred[:, :, :h, :w].to("cpu", torch.float32)

    def inpaint(self, frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 4 or frames.shape[1] != 3 or masks.shape != (frames.shape[0], 1, *frames.shape[2:]):
            raise InputError(f"{self.model.name}: expected frames (T, 3, H, W) and masks (T, 1, H, W), got "
                             f"{tuple(frames.shape)} and {tuple(masks.shape)}", fix="see triptych.methods.Inpainter")
        if frames.shape[0] < 2:
            raise InputError(f"{self.model.name}: a video of {frames.shape[0]} frame cannot be completed",
                             fix="E2FGVI needs at least two frames (its flows link consecutive frames)")
        video, holes = frames_to_uint8(frames), masks_to_holes(masks)
        out = np.empty(video.shape, dtype=np.float32)
        for i, comp in complete_video(self.window, len(video), lambda i: (video[i], holes[i]),
                                      self.neighbor_stride, self.ref_stride):
            out[i] = comp
        return torch.from_numpy(out / np.float32(255.0)).permute(0, 3, 1, 2).contiguous()


def make_e2fgvi_method(hq: bool, weights: str | None = None, neighbor_stride: int = NEIGHBOR_STRIDE,
                       ref_stride: int = REF_STRIDE, device: str | None = None,
                       precision: str = "fp32") -> E2FGVIInpainter:
    """Build, load and wrap one generator (eval mode, no gradients)."""
    model = E2FGVI(hq)
    provenance = load_weights(model, weights)
    return E2FGVIInpainter(model, provenance, neighbor_stride, ref_stride, device, precision)


def make_e2fgvi(weights: str | None = None, neighbor_stride: int = NEIGHBOR_STRIDE, ref_stride: int = REF_STRIDE,
                device: str | None = None, precision: str = "fp32") -> E2FGVIInpainter:
    """E2FGVI (registry weights ``e2fgvi`` = E2FGVI-CVPR22.pth unless a file is given)."""
    return make_e2fgvi_method(False, weights, neighbor_stride, ref_stride, device, precision)


def make_e2fgvi_hq(weights: str | None = None, neighbor_stride: int = NEIGHBOR_STRIDE, ref_stride: int = REF_STRIDE,
                   device: str | None = None, precision: str = "fp32") -> E2FGVIInpainter:
    """E2FGVI-HQ (registry weights ``e2fgvi_hq`` = E2FGVI-HQ-CVPR22.pth unless a file is given)."""
    return make_e2fgvi_method(True, weights, neighbor_stride, ref_stride, device, precision)
