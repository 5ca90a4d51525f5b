"""Parameters and FLOPs of the reference models from their architectures alone (no checkpoint).

Each network is built with its released configuration on PyTorch's ``meta`` device (shapes, no memory,
no values; E2FGVI is built on the CPU, whose constructor computes index buffers, then moved to ``meta``)
and run once on ``meta`` inputs of the published size under ``torch.utils.flop_counter.FlopCounterMode``.
Counting convention (``CONVENTION``): one multiply-accumulate (MAC) is 2 FLOPs; convolutions, matrix
products, attention and (registered here) ``torchvision.ops.deform_conv2d`` are counted; element-wise
operations, normalisation, ``grid_sample`` and resizing are not. Published figures used other counters;
``PUBLISHED_CONVENTIONS`` says, per method family, what the thesis' number counts.

Per unit of output:

- AMT (S / L / G): one interpolated frame from a 1280x720 pair (the thesis' "720p input pair").
- E2FGVI / E2FGVI-HQ at 432x240: (a) one forward of an 8-frame window (the thesis' "temporal window 8")
  and (b) per frame of the evaluation protocol (``baselines.video_window``: windows every 5 frames, 11
  local frames plus every 10th frame as reference) on a ``frames``-long video: the sum of the windows'
  costs divided by the frames.
- PhotoMaker at 1024x1024, per image: the ID encoder once (``references`` reference images), the SDXL UNet
  ``steps`` times on a batch of 2 (classifier-free guidance: the negative and the ID prompt), the SDXL VAE
  decoder once; the two text encoders are left out (a few GFLOPs per prompt).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torchvision.ops  # noqa: F401  (registers torch.ops.torchvision.deform_conv2d)
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula

from triptych.errors import TriptychError

CONVENTION = ("FLOPs = 2 x multiply-accumulates (MACs), counted by torch.utils.flop_counter.FlopCounterMode on the "
              "meta device over convolutions, matrix products, attention and torchvision's deform_conv2d; "
              "element-wise ops, normalisation, grid_sample and resizing are not counted")
# What the thesis' efficiency numbers count, beside each published figure (checked against the counts here).
PUBLISHED_CONVENTIONS = {
    "amt": ("the thesis' 'TFLOPs' at 720p are MACs (thop-style): AMT-S 0.12 / AMT-L 0.58 / AMT-G 2.07 printed vs "
            "0.116 / 0.580 / 2.06 T MACs counted here"),
    "e2fgvi": ("the thesis' 682 'GFLOPs' (temporal window 8) are MACs of the convolution and linear layers only "
               "(module-hook counters such as thop / ptflops): 684.8 G counted here for E2FGVI; attention "
               "products and the deformable convolution are not in it"),
    "photomaker": "the thesis publishes no FLOPs for PhotoMaker; its time (table 5.4) is seconds per ID on a V100",
}


@register_flop_formula(torch.ops.torchvision.deform_conv2d)
def _deform_conv2d_flops(input_shape: Any, weight_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """Modulated deformable 3x3 convolution: as a convolution of the same shapes (sampling not counted)."""
    n, c_out, h, w = out_shape
    _, c_in_per_group, kh, kw = weight_shape
    return 2 * n * c_out * h * w * c_in_per_group * kh * kw


@dataclass(frozen=True)
class Part:
    """One network of a method: its parameters, and the MACs of one call times the calls per unit."""

    name: str
    params: int
    macs_per_call: int
    calls: float
    macs_by_operator: dict[str, int]
    call: str  # what one call is, in words

    @property
    def macs(self) -> float:
        return self.macs_per_call * self.calls


@dataclass(frozen=True)
class ArchitectureFigures:
    """A method's parameters and per-unit cost, counted from its architecture."""

    method: str
    family: str  # amt | e2fgvi | photomaker (PUBLISHED_CONVENTIONS)
    width: int
    height: int
    unit: str  # "interpolated frame", "frame (evaluation protocol)", "image"
    parts: tuple[Part, ...]
    extras: dict[str, Any]

    @property
    def params(self) -> int:
        return sum(p.params for p in self.parts)

    @property
    def macs(self) -> float:
        return sum(p.macs for p in self.parts)

    @property
    def flops(self) -> float:
        return 2 * self.macs

    def published_value(self, metric: str, unit: str) -> tuple[float | None, str]:
        """The count in a published figure's unit and convention: (value, the convention in words)."""
        convention = PUBLISHED_CONVENTIONS[self.family]
        if metric == "params" and unit == "M":
            return self.params / 1e6, "parameters of the architecture"
        scale = {"TFLOPs": 1e12, "GFLOPs": 1e9}.get(unit)
        if metric == "flops" and scale is not None:
            if self.family == "e2fgvi":
                return self.extras["window8_conv_linear_macs"] / scale, convention
            return self.macs / scale, convention
        return None, f"{metric} ({unit}) is not counted from the architecture"

    def document(self) -> dict[str, Any]:
        """JSON-ready description (``triptych efficiency``)."""
        return {"method": self.method, "size": {"width": self.width, "height": self.height}, "unit": self.unit,
                "params": self.params, "macs": self.macs, "flops": self.flops, "convention": CONVENTION,
                "published_convention": PUBLISHED_CONVENTIONS[self.family],
                "parts": [{"name": p.name, "params": p.params, "macs_per_call": p.macs_per_call, "calls": p.calls,
                           "call": p.call, "macs_by_operator": p.macs_by_operator} for p in self.parts],
                **self.extras}


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_macs(call: Callable[[], Any]) -> tuple[int, dict[str, int]]:
    """MACs (FLOPs / 2) of one call, total and per aten operator."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        call()
    by_op = {str(op): int(n) // 2 for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return int(counter.get_total_flops()) // 2, by_op


def _meta(*shape: int) -> torch.Tensor:
    return torch.empty(*shape, device="meta")


def count_amt(method: str, variant: str, width: int = 1280, height: int = 720) -> ArchitectureFigures:
    from triptych.baselines.amt import build_amt

    with torch.device("meta"):
        model = build_amt(variant).eval()
    x0, x1, embt = _meta(1, 3, height, width), _meta(1, 3, height, width), _meta(1, 1, 1, 1)
    macs, by_op = count_macs(lambda: model(x0, x1, embt, scale_factor=1.0, eval=True))
    part = Part(f"AMT-{variant}", _params(model), macs, 1, by_op, f"one {width}x{height} pair at t = 0.5, scale 1.0")
    return ArchitectureFigures(method, "amt", width, height, "interpolated frame", (part,), {})


def _e2fgvi_window_macs(model: torch.nn.Module, width: int, height: int, local: int, refs: int) -> tuple[int, dict]:
    frames = _meta(1, local + refs, 3, height, width)
    return count_macs(lambda: model(frames, local))


def count_e2fgvi(method: str, hq: bool, width: int = 432, height: int = 240, frames: int = 70) -> ArchitectureFigures:
    """E2FGVI's cost per frame of the evaluation protocol on a ``frames``-long video, and of one 8-frame
    window (module docstring)."""
    from triptych.baselines.e2fgvi import E2FGVI
    from triptych.baselines.video_window import plan_windows

    model = E2FGVI(hq).eval()
    model.check_size(height, width)
    model = model.to("meta")
    window = functools.lru_cache(maxsize=None)(lambda local, refs: _e2fgvi_window_macs(model, width, height, local,
                                                                                         refs))
    windows = plan_windows(frames)
    total = sum(window(len(w.local), len(w.references))[0] for w in windows)
    eight, eight_by_op = window(8, 0)
    conv_linear = sum(n for op, n in eight_by_op.items() if op in ("aten.convolution", "aten.mm", "aten.addmm"))
    part = Part(model.name, _params(model), total, 1 / frames, {},
                f"the {len(windows)} windows of a {frames}-frame {width}x{height} video (neighbor stride 5, "
                "every 10th frame as reference), divided by its frames")
    extras = {"frames": frames, "windows": len(windows), "window8_macs": eight, "window8_macs_by_operator": eight_by_op,
              "window8_conv_linear_macs": conv_linear}
    return ArchitectureFigures(method, "e2fgvi", width, height, "frame (evaluation protocol)", (part,), extras)


def count_photomaker(method: str, version: str, width: int = 1024, height: int = 1024, steps: int = 50,
                     references: int = 4) -> ArchitectureFigures:
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from triptych.baselines.photomaker_encoder import build_id_encoder
    from triptych.baselines.photomaker_pipeline import SDXL_UNET_CONFIG, SDXL_VAE_CONFIG

    if version != "v1":
        raise TriptychError(f"PhotoMaker {version}: its ID encoder needs insightface's ArcFace embedding, which is "
                            "not counted here", fix="count photomaker-v1")
    with torch.device("meta"):
        encoder = build_id_encoder(version, init_weights=False)
        unet = UNet2DConditionModel(**SDXL_UNET_CONFIG).eval()
        vae = AutoencoderKL(**SDXL_VAE_CONFIG).eval()
    lh, lw = height // 8, width // 8
    pixels, class_rows = _meta(references, 3, 224, 224), _meta(references, 2048)

    def encode() -> torch.Tensor:  # PhotoMakerIDEncoderV1.run without the data-dependent row selection
        pooled = encoder.vision_model(pixel_values=pixels).pooler_output
        ids = torch.cat([encoder.visual_projection(pooled), encoder.visual_projection_2(pooled)], dim=-1)
        return encoder.fuse_module.fuse(class_rows, ids)  # one class-word row per reference image

    enc_macs, enc_ops = count_macs(encode)
    latents, text = _meta(2, 4, lh, lw), _meta(2, 77, 2048)
    cond = {"text_embeds": _meta(2, 1280), "time_ids": _meta(2, 6)}
    timestep = torch.tensor([999, 999], device="meta")
    unet_macs, unet_ops = count_macs(lambda: unet(latents, timestep, encoder_hidden_states=text,
                                                  added_cond_kwargs=cond))
    vae_macs, vae_ops = count_macs(lambda: vae.decode(_meta(1, 4, lh, lw)))
    parts = (Part("PhotoMaker ID encoder", _params(encoder), enc_macs, 1, enc_ops,
                  f"{references} reference images at 224x224 and one prompt"),
             Part("SDXL UNet", _params(unet), unet_macs, steps, unet_ops,
                  f"one denoising step on a batch of 2 (classifier-free guidance) at {lw}x{lh} latents"),
             Part("SDXL VAE decoder", _params(vae.decoder) + _params(vae.post_quant_conv), vae_macs, 1, vae_ops,
                  f"one {width}x{height} image"))
    return ArchitectureFigures(method, "photomaker", width, height, "image", parts,
                               {"steps": steps, "references": references})


def _random_amt(variant: str, device: str) -> Any:
    from triptych.baselines.amt import AMTInterpolator, build_amt

    torch.manual_seed(0)
    return AMTInterpolator(build_amt(variant).to(device))


def _random_e2fgvi(hq: bool, device: str) -> Any:
    from triptych.baselines.e2fgvi import E2FGVI, E2FGVIInpainter

    torch.manual_seed(0)
    return E2FGVIInpainter(E2FGVI(hq), None, device=device)


@dataclass(frozen=True)
class Reference:
    """How to count a reference model, and how to build it with random weights (runtime only)."""

    count: Callable[..., ArchitectureFigures]
    random: Callable[[str], Any] | None  # device -> method object; None: no runtime without the weights


# Each reference method's factory (baselines/specs) -> its architecture.
REFERENCES: dict[str, Reference] = {
    "triptych.baselines.amt:make_amt_s": Reference(functools.partial(count_amt, variant="S"),
                                                   functools.partial(_random_amt, "S")),
    "triptych.baselines.amt:make_amt_s_gopro": Reference(functools.partial(count_amt, variant="S"),
                                                         functools.partial(_random_amt, "S")),
    "triptych.baselines.amt:make_amt_l": Reference(functools.partial(count_amt, variant="L"),
                                                   functools.partial(_random_amt, "L")),
    "triptych.baselines.amt:make_amt_g": Reference(functools.partial(count_amt, variant="G"),
                                                   functools.partial(_random_amt, "G")),
    "triptych.baselines.e2fgvi:make_e2fgvi": Reference(functools.partial(count_e2fgvi, hq=False),
                                                       functools.partial(_random_e2fgvi, False)),
    "triptych.baselines.e2fgvi:make_e2fgvi_hq": Reference(functools.partial(count_e2fgvi, hq=True),
                                                          functools.partial(_random_e2fgvi, True)),
    "triptych.baselines.photomaker_pipeline:make_photomaker": Reference(count_photomaker, None),
}


def reference_of(method: str) -> Reference | None:
    """The registered method's architecture, or None for a method that is not a reference model."""
    from triptych.registry import registry

    return REFERENCES.get(registry().method(method).callable)


def architecture_figures(method: str, width: int | None = None, height: int | None = None,
                         **options: Any) -> ArchitectureFigures:
    """Count a registered reference method at its published size (or ``width`` x ``height``)."""
    from triptych.registry import registry

    spec = registry().method(method)
    reference = REFERENCES.get(spec.callable)
    if reference is None:
        known = sorted(n for n, s in registry().methods.items() if s.callable in REFERENCES)
        raise TriptychError(f"method {method!r} has no architecture to count (its factory {spec.callable} is not a "
                            "reference model)", fix=f"count one of: {', '.join(known)}")
    size = {k: v for k, v in (("width", width), ("height", height)) if v is not None}
    if reference.count is count_photomaker:
        options.setdefault("steps", spec.params.get("steps", 50))
        return count_photomaker(method, spec.params.get("version", "v1"), **size, **options)
    return reference.count(method, **size, **options)
