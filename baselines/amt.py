"""AMT-S, AMT-L and AMT-G (Li et al., CVPR 2023): a checkpoint-compatible port, built from one table.

Reference: MCG-NKU/AMT @ 70f988f, ``networks/AMT-S.py``, ``AMT-L.py``, ``AMT-G.py`` with
``cfgs/AMT-{S,L,G}.yaml`` (corr_radius 3, corr_lvls 4, num_flows 3 / 5 / 5); the blocks are in
``triptych.baselines.amt_blocks``. The released checkpoints ``amt-{s,l,g}.pth`` are ``{'state_dict': ...}``
whose keys, order and shapes equal ``AMT(CONFIGS[...]).state_dict()`` (checked against the fixture key
lists ``amt_{s,l,g}_keys.json``: 2,990,543 / 12,935,367 / 30,638,919 parameters, no buffers).

Forward semantics (``Model.forward`` of the reference, ``eval=True``):

1. subtract the per-sample scalar mean of both frames (mean over channels, then rows of the two frames
   stacked vertically, then columns);
2. bilinear-resize both frames by ``scale_factor`` when it is not 1;
3. correlation features at 1/8, context pyramid at 1/2 .. 1/16, then coarse-to-fine decoding: at 1/8,
   1/4 and 1/2 of the (scaled) resolution a correlation-guided update refines both flows and the frame
   features (AMT-G adds a second update at full level resolution with the correlation upsampled);
4. the finest decoder gives ``num_flows`` flow pairs, masks and colour residuals; with a scale factor
   they are resized back by ``1 / scale_factor`` (flows also multiplied by it);
5. the candidates are merged (``combine_flows``) and the result clamped to [0, 1].

The benchmark scripts wrap the call in an ``InputPadder`` (replicate padding to a multiple of a divisor)
and pass ``embt = 0.5`` as a (1, 1, 1, 1) float32 tensor; ``AMTInterpolator`` does the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from triptych.baselines.amt_blocks import (
    ContextPyramid,
    CorrelationEncoder,
    CorrelationPyramid,
    FlowUpdate,
    InitialDecoder,
    IntermediateDecoder,
    MultiFlowDecoder,
    UnitKind,
    combination_block,
    combine_flows,
    pixel_grid,
    resize,
    to_channels_last,
)
from triptych.baselines.precision import autocast, check_precision
from triptych.errors import InputError, TriptychError
from triptych.weights import state_mismatch

Variant = Literal["S", "L", "G"]


@dataclass(frozen=True)
class AMTConfig:
    """Everything that differs between AMT-S, AMT-L and AMT-G (all facts of the reference networks)."""

    name: str
    weights: str  # triptych weights-registry name of the released checkpoint
    encoder_unit: UnitKind  # correlation encoder: bottleneck (SmallEncoder) or residual (Basic/LargeEncoder)
    encoder_stem: int
    encoder_stages: tuple[tuple[str, int, int], ...]  # (module name, channels, stride)
    encoder_dim: int  # correlation feature channels
    channels: tuple[int, int, int, int]  # context pyramid channels at 1/2, 1/4, 1/8, 1/16
    large_stem: bool  # 7x7 first pyramid conv
    skip_channels: int  # side channels of the decoders' residual blocks
    num_flows: int
    hidden_dim: int
    flow_dim: int
    corr_dim: int
    corr_dim2: int | None  # second correlation conv (AMT-L/G only)
    fc_dim: int
    comb_kernel: int
    full_res_updates: bool  # AMT-G: a second update per level at the level's own resolution
    corr_radius: int = 3
    corr_levels: int = 4
    parameters: int = 0  # published total, as counted on the reference model


CONFIGS: dict[str, AMTConfig] = {
    "S": AMTConfig(
        name="AMT-S", weights="amt_s", encoder_unit="bottleneck", encoder_stem=32,
        encoder_stages=(("layer1", 32, 1), ("layer2", 64, 2), ("layer3", 96, 2)), encoder_dim=84,
        channels=(20, 32, 44, 56), large_stem=False, skip_channels=20, num_flows=3,
        hidden_dim=76, flow_dim=20, corr_dim=64, corr_dim2=None, fc_dim=68, comb_kernel=3,
        full_res_updates=False, parameters=2_990_543),
    "L": AMTConfig(
        name="AMT-L", weights="amt_l", encoder_unit="residual", encoder_stem=64,
        encoder_stages=(("layer1", 64, 1), ("layer2", 72, 2), ("layer3", 128, 2)), encoder_dim=128,
        channels=(48, 64, 72, 128), large_stem=True, skip_channels=48, num_flows=5,
        hidden_dim=128, flow_dim=48, corr_dim=256, corr_dim2=160, fc_dim=124, comb_kernel=7,
        full_res_updates=False, parameters=12_935_367),
    "G": AMTConfig(
        name="AMT-G", weights="amt_g", encoder_unit="residual", encoder_stem=64,
        encoder_stages=(("layer1", 64, 1), ("layer2", 112, 2), ("layer3", 160, 2), ("layer3_2", 160, 1)),
        encoder_dim=128, channels=(84, 96, 112, 128), large_stem=True, skip_channels=84, num_flows=5,
        hidden_dim=192, flow_dim=64, corr_dim=256, corr_dim2=192, fc_dim=188, comb_kernel=7,
        full_res_updates=True, parameters=30_638_919),
}

SIZE_MULTIPLE = 16  # the context pyramid halves four times and the decoders double back


class AMT(nn.Module):
    """One AMT network (S, L or G by its config); the state dict is that of the reference ``Model``."""

    def __init__(self, config: AMTConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.feat_encoder = CorrelationEncoder(config.encoder_unit, config.encoder_stem, config.encoder_stages,
                                               config.encoder_dim)
        self.encoder = ContextPyramid(c, config.large_stem)
        self.decoder4 = InitialDecoder(c[3], c[2], config.skip_channels)
        self.decoder3 = IntermediateDecoder(c[2], c[1], config.skip_channels)
        self.decoder2 = IntermediateDecoder(c[1], c[0], config.skip_channels)
        self.decoder1 = MultiFlowDecoder(c[0], config.skip_channels, config.num_flows)
        # Registration order is the checkpoint's key order: update4, then the low-resolution updates of
        # levels 3 and 2, then (AMT-G) their full-resolution twins.
        suffix = "_low" if config.full_res_updates else ""
        self.update_names = ("update4", f"update3{suffix}", f"update2{suffix}")
        for name, cdim, scale in zip(self.update_names, (c[2], c[1], c[0]), (None, 2.0, 4.0)):
            self.add_module(name, self._update(cdim, scale))
        self.full_res_names: tuple[str | None, ...] = (None, None, None)
        if config.full_res_updates:
            self.full_res_names = (None, "update3_high", "update2_high")
            for name, cdim in (("update3_high", c[1]), ("update2_high", c[0])):
                self.add_module(name, self._update(cdim, None))
        self.comb_block = combination_block(config.num_flows, config.comb_kernel)

    def _update(self, cdim: int, scale: float | None) -> FlowUpdate:
        k = self.config
        return FlowUpdate(cdim, k.hidden_dim, k.flow_dim, k.corr_dim, k.corr_dim2, k.fc_dim, k.corr_levels,
                          k.corr_radius, scale)

    @staticmethod
    def _lookup(corr: CorrelationPyramid, coords: torch.Tensor, flow0: torch.Tensor, flow1: torch.Tensor,
                embt: torch.Tensor, downsample: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Correlation at the 1/8 grid for flows of a level ``downsample`` times finer. Under the linear
        motion assumption a flow t->0 scaled by 1/(1-t) is the flow 1->0 and t->1 scaled by 1/t the flow
        0->1; as in the reference, the forward volume is looked up with the flow t->1 and the backward
        one with the flow t->0."""
        if downsample != 1:
            inv = 1 / downsample
            flow0 = inv * resize(flow0, inv)
            flow1 = inv * resize(flow1, inv)
        c0, c1 = corr.lookup(coords + flow1 * (1.0 / embt), coords + flow0 * (1.0 / (1.0 - embt)))
        return torch.cat([c0, c1], 1), torch.cat([flow0, flow1], 1)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, embt: torch.Tensor, scale_factor: float = 1.0,
                eval: bool = True, keep_pre_clamp: bool = False) -> dict[str, Any]:
        """``img0``, ``img1``: (B, 3, H, W) in [0, 1]; ``embt``: (B, 1, 1, 1) time of the output frame.

        Returns ``{'imgt_pred'}`` (clamped to [0, 1]) when ``eval``, else also the flow pyramids
        ``flow0_pred`` / ``flow1_pred`` (finest first, the finest as (B, n, 2, H', W')) and ``ft_pred``,
        as the reference does. ``keep_pre_clamp`` adds ``imgt_pred_pre_clamp``, the merged prediction
        before the clamp (what the golden fixtures store).
        """
        mean = torch.cat([img0, img1], 2).mean(1, keepdim=True).mean(2, keepdim=True).mean(3, keepdim=True)
        img0 = img0 - mean
        img1 = img1 - mean
        x0 = resize(img0, scale_factor) if scale_factor != 1.0 else img0
        x1 = resize(img1, scale_factor) if scale_factor != 1.0 else img1
        b, _, h, w = x0.shape
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise InputError(
                f"{self.config.name}: the network input is {w}x{h} (after scale factor {scale_factor}), which is "
                f"not a multiple of {SIZE_MULTIPLE} in both sides",
                fix=f"pad the frames first (InputPadder / pad_divisor {SIZE_MULTIPLE}, or the benchmark's divisor)")
        coords = pixel_grid(b, h // 8, w // 8, img0.device)
        fmap0, fmap1 = self.feat_encoder(x0, x1)
        corr = CorrelationPyramid(fmap0, fmap1, self.config.corr_levels, self.config.corr_radius)
        # The context pyramid, decoders, updates and the merge run channels-last, oneDNN's fastest layout
        # (docs/performance.md, "AMT"), both images through the pyramid as one batch; the correlation encoder
        # stays channel-first, as its instance norms return it. Outputs stay within 1e-5 of the reference.
        pyramid = self.encoder(to_channels_last(torch.cat([x0, x1], 0)))  # 1/2, 1/4, 1/8, 1/16
        f0 = [level[:b] for level in pyramid]
        f1 = [level[b:] for level in pyramid]

        flow0, flow1, ft = self.decoder4(f0[3], f1[3], embt)
        flows0, flows1, feats = [], [], []
        decoders = (None, self.decoder3, self.decoder2)
        for step, (decoder, level) in enumerate(zip(decoders, (3, 2, 1))):
            if decoder is not None:
                flow0, flow1, ft = decoder(ft, f0[level], f1[level], flow0, flow1)
            downsample = 2 ** step
            corr_l, flow_l = self._lookup(corr, coords, flow0, flow1, embt, downsample)
            delta_ft, delta_flow = getattr(self, self.update_names[step])(ft, flow_l, corr_l)
            flow0 = flow0 + delta_flow[:, 0:2]
            flow1 = flow1 + delta_flow[:, 2:4]
            ft = ft + delta_ft
            full_res = self.full_res_names[step]
            if full_res is not None:
                delta_ft, delta_flow = getattr(self, full_res)(ft, torch.cat([flow0, flow1], 1),
                                                               resize(corr_l, float(downsample)))
                ft = ft + delta_ft
                flow0 = flow0 + delta_flow[:, 0:2]
                flow1 = flow1 + delta_flow[:, 2:4]
            flows0.insert(0, flow0)
            flows1.insert(0, flow1)
            feats.insert(0, ft)

        out0, out1, mask, img_res = self.decoder1(ft, f0[0], f1[0], flow0, flow1)
        if scale_factor != 1.0:
            back = 1.0 / scale_factor
            out0 = resize(out0, back) * back
            out1 = resize(out1, back) * back
            mask = resize(mask, back)
            img_res = resize(img_res, back)
        merged = combine_flows(self.comb_block, img0, img1, out0, out1, mask, img_res, mean)
        result: dict[str, Any] = {"imgt_pred": torch.clamp(merged, 0, 1)}
        if keep_pre_clamp:
            result["imgt_pred_pre_clamp"] = merged
        if not eval:
            n, size = self.config.num_flows, out0.shape[-2:]
            result["flow0_pred"] = [out0.reshape(b, n, 2, *size), *flows0]
            result["flow1_pred"] = [out1.reshape(b, n, 2, *size), *flows1]
            result["ft_pred"] = feats
        return result


def build_amt(variant: Variant) -> AMT:
    """A fresh AMT-S / AMT-L / AMT-G (PyTorch default initialisation; load weights before use)."""
    if variant not in CONFIGS:
        raise TriptychError(f"unknown AMT variant {variant!r}", fix=f"use one of: {', '.join(CONFIGS)}")
    return AMT(CONFIGS[variant])


def load_amt_state(model: AMT, state: Mapping[str, torch.Tensor], source: str = "state dict") -> None:
    """Load ``state`` strictly; a missing, extra or mis-shaped key is a ``TriptychError`` that names it."""
    expected = model.state_dict()
    mismatch = state_mismatch(expected, state)
    if mismatch:
        name = model.config.name
        hint = ""
        if mismatch.unexpected and all(k.startswith("module.") for k in mismatch.unexpected):
            hint = "; its keys start with 'module.' (a DataParallel save): strip that prefix first"
        raise TriptychError(
            f"{source} does not fit {name} ({len(expected)} keys): " + mismatch.describe(),
            fix=f"pass the {name} checkpoint ({model.config.weights.replace('_', '-')}.pth, "
                f"{{'state_dict': ...}}) or a state dict saved from this port; other AMT sizes do not fit{hint}")
    model.load_state_dict(dict(state), strict=True)


class InputPadder:
    """Replicate-pad (B, C, H, W) tensors so H and W become multiples of ``divisor`` (AMT ``utils/utils.py``).

    Each side gets ``pad = (((n // d) + 1) * d - n) % d`` split as ``[pad // 2, pad - pad // 2]``
    (left/right, top/bottom); ``unpad`` cuts the same margins off.
    """

    def __init__(self, shape: tuple[int, ...] | torch.Size, divisor: int) -> None:
        if divisor < 1:
            raise TriptychError(f"padding divisor must be a positive integer, not {divisor}",
                                fix="use e.g. 16, 20 or 32")
        h, w = shape[-2:]
        pad_h = (((h // divisor) + 1) * divisor - h) % divisor
        pad_w = (((w // divisor) + 1) * divisor - w) % divisor
        self.pad_lrtb = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, list(self.pad_lrtb), mode="replicate")

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        left, right, top, bottom = self.pad_lrtb
        h, w = x.shape[-2:]
        return x[..., top:h - bottom, left:w - right]


class AMTInterpolator:
    """``triptych.methods.Interpolator`` over an AMT network, with a fixed benchmark invocation.

    ``pad_divisor`` (None = no padding) and ``scale_factor`` are those of the AMT benchmark script being
    reproduced: vimeo90k.py / ucf101.py None and 1.0, snu_film.py 20 and 0.8, xiph.py 32 and 0.5,
    demo_2x.py 16 and 1.0. The output is the model's clamped prediction, unrounded. ``weights`` records
    the provenance of the loaded file (``triptych.weights.describe`` / ``describe_user_file``); ``precision``
    is fp32, or bf16 / fp16 under autocast (``triptych.baselines.precision``).
    """

    def __init__(self, model: AMT, pad_divisor: int | None = None, scale_factor: float = 1.0,
                 weights: dict[str, Any] | None = None, precision: str = "fp32") -> None:
        if not scale_factor > 0:
            raise TriptychError(f"scale_factor must be positive, not {scale_factor}", fix="use e.g. 1.0, 0.8 or 0.5")
        if pad_divisor is not None and (isinstance(pad_divisor, bool) or not isinstance(pad_divisor, int)
                                        or pad_divisor < 1):
            raise TriptychError(f"pad_divisor must be a positive integer or null, not {pad_divisor!r}",
                                fix="use e.g. 16, 20 or 32, or null for no padding")
        check_precision(precision, next(model.parameters()).device, model.config.name)
        self.model = model.eval().requires_grad_(False)
        self.precision = precision
        self.pad_divisor = pad_divisor
        self.scale_factor = float(scale_factor)
        self.weights = weights

    def interpolate(self, frame0: torch.Tensor, frame1: torch.Tensor, t: float) -> torch.Tensor:
        name = self.model.config.name
        if frame0.ndim != 3 or frame0.shape[0] != 3 or frame0.shape != frame1.shape:
            raise InputError(f"{name}: expected two (3, H, W) frames of one size, got {tuple(frame0.shape)} and "
                             f"{tuple(frame1.shape)}", fix="pass RGB channel-first frames (triptych.methods)")
        if not 0.0 < t < 1.0:
            raise InputError(f"{name}: time t={t} is outside (0, 1)",
                             fix="AMT interpolates strictly between the two frames")
        device = next(self.model.parameters()).device
        x0 = frame0.unsqueeze(0).to(device, torch.float32)
        x1 = frame1.unsqueeze(0).to(device, torch.float32)
        embt = torch.tensor(t).float().view(1, 1, 1, 1).to(device)
        with torch.inference_mode(), autocast(self.precision, device):
            padder = InputPadder(x0.shape, self.pad_divisor) if self.pad_divisor else None
            if padder is not None:
                x0, x1 = padder.pad(x0), padder.pad(x1)
            out = self.model(x0, x1, embt, scale_factor=self.scale_factor, eval=True)["imgt_pred"]
            if padder is not None:
                out = padder.unpad(out)
        return out[0].to("cpu", torch.float32)


def load_weights(model: AMT, weights: str | None, registry_name: str | None = None) -> dict[str, Any]:
    """Load the released checkpoint (``weights=None``: the registry entry ``registry_name``, by default the
    size's Vimeo90K one, verified by sha256) or a user file (``.safetensors`` flat, ``.pth`` / ``.pt`` /
    ``.bin`` under ``state_dict`` or plain) strictly; returns the provenance record for the run."""
    from triptych import weights as registry_weights

    if weights is None:
        name = registry_name or model.config.weights
        spec = registry_weights.get_spec(name)
        path = registry_weights.resolve(name)
        load_amt_state(model, registry_weights.load_state_dict(path, spec.container_key), f"weights {name!r} ({path})")
        return registry_weights.describe(name)
    path = Path(weights).expanduser()
    if path.suffix.lower() == ".safetensors":
        state = registry_weights.load_state_dict(path)
    else:
        try:
            state = registry_weights.load_state_dict(path, "state_dict")
        except TriptychError as wrapped_error:
            try:
                state = registry_weights.load_state_dict(path)
            except TriptychError:
                raise wrapped_error from None
    load_amt_state(model, state, str(path))
    return registry_weights.describe_user_file(path)


def make_amt(variant: Variant, weights: str | None = None, pad_divisor: int | None = None,
             scale_factor: float = 1.0, registry_name: str | None = None, device: str = "cpu",
             precision: str = "fp32") -> AMTInterpolator:
    """Build, load and wrap one AMT size (eval mode, no gradients); ``registry_name`` picks another
    released checkpoint of the size (e.g. ``amt_s_gopro``)."""
    model = build_amt(variant)
    provenance = load_weights(model, weights, registry_name)
    return AMTInterpolator(model.to(device), pad_divisor, scale_factor, provenance, precision)


def make_amt_s(weights: str | None = None, pad_divisor: int | None = None,
               scale_factor: float = 1.0, device: str = "cpu") -> AMTInterpolator:
    """AMT-S (registry weights ``amt_s`` unless a file is given)."""
    return make_amt("S", weights, pad_divisor, scale_factor, device=device)


def make_amt_s_gopro(weights: str | None = None, pad_divisor: int | None = None,
                     scale_factor: float = 1.0, device: str = "cpu") -> AMTInterpolator:
    """AMT-S on the GoPro-trained checkpoint (registry weights ``amt_s_gopro`` unless a file is given)."""
    return make_amt("S", weights, pad_divisor, scale_factor, registry_name="amt_s_gopro", device=device)


def make_amt_l(weights: str | None = None, pad_divisor: int | None = None,
               scale_factor: float = 1.0, device: str = "cpu", precision: str = "fp32") -> AMTInterpolator:
    """AMT-L (registry weights ``amt_l`` unless a file is given)."""
    return make_amt("L", weights, pad_divisor, scale_factor, device=device, precision=precision)


def make_amt_g(weights: str | None = None, pad_divisor: int | None = None,
               scale_factor: float = 1.0, device: str = "cpu", precision: str = "fp32") -> AMTInterpolator:
    """AMT-G (registry weights ``amt_g`` unless a file is given)."""
    return make_amt("G", weights, pad_divisor, scale_factor, device=device, precision=precision)
