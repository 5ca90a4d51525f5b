"""DINO similarity (docs/protocols/personalization.md, the DreamBooth convention): mean cosine of the self-supervised
ViT CLS embeddings of the generated image and of each reference image. Raw cosine in [-1, 1] (the thesis
prints x100, applied when reported rows are loaded).

Variants (``metrics/specs/personalization.yaml``), each with its own pinned encoder recorded in results:

- ``dreambooth``: DINO ViT-S/16 (weights entry ``dino_vits16``: facebookresearch/dino
  ``dino_deitsmall16_pretrain.pth``), the DreamBooth paper's encoder. Built as timm
  ``vit_small_patch16_224`` with ``num_classes=0`` (the same DeiT-S layout and key names as DINO's
  ``vision_transformer.vit_small``; the checkpoint has no head) and loaded strictly. The embedding is the
  CLS token after the final LayerNorm, what DINO's ``forward`` returns.
- ``dinov2``: DINOv2 ViT-S/14 (``dinov2_vits14``), timm ``vit_small_patch14_dinov2`` at 224x224 input with
  ``num_classes=0``. Before the strict load, the checkpoint's training-only ``mask_token`` is dropped and
  its 37x37 position grid (518-px training size) is resized to the 16x16 grid of a 224 input the way
  DINOv2's own ``interpolate_pos_encoding`` does at run time: bicubic, ``scale_factor = (16 + 0.1) / 37``,
  no antialiasing. The embedding is the normalised CLS token (``x_norm_clstoken``).

Preprocessing (both): DINO's evaluation transform (``eval_linear.py``): PIL bicubic resize of the shorter
side to 256, centre crop 224, ToTensor, Normalize with the ImageNet mean (0.485, 0.456, 0.406) and std
(0.229, 0.224, 0.225). Images are anything ``triptych.vision.face.load_image`` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from triptych.errors import TriptychError
from triptych.vision.face import EmbeddingCache, ImageLike, load_image
from triptych.weights import per_file_cache

# weights-registry entry -> timm architecture
DINO_MODELS: dict[str, str] = {
    "dino_vits16": "vit_small_patch16_224",
    "dinov2_vits14": "vit_small_patch14_dinov2",
}
INPUT_SIZE = 224
RESIZE = 256
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DINOV2_INTERPOLATE_OFFSET = 0.1  # dinov2 DinoVisionTransformer(interpolate_offset=0.1, interpolate_antialias=False)


def dino_transform() -> Callable[[Image.Image], torch.Tensor]:
    """Resize(256, bicubic) -> CenterCrop(224) -> ToTensor -> Normalize(ImageNet)."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(RESIZE, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(INPUT_SIZE),
                      T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def build_vit(arch: str) -> torch.nn.Module:
    """The timm backbone of a DINO_MODELS architecture at 224x224 input, headless, randomly initialised."""
    import timm

    return timm.create_model(arch, pretrained=False, num_classes=0, img_size=INPUT_SIZE).eval()


def dinov2_to_224(state: dict[str, torch.Tensor], patch: int = 14) -> dict[str, torch.Tensor]:
    """An official DINOv2 state dict made loadable by the 224-input timm model: ``mask_token`` dropped, the
    position grid resized as DINOv2's ``interpolate_pos_encoding`` does for a 224x224 image."""
    out = {k: v for k, v in state.items() if k != "mask_token"}
    pos = out["pos_embed"]
    grid = int(round((pos.shape[1] - 1) ** 0.5))
    target = INPUT_SIZE // patch
    if grid != target:
        dim = pos.shape[2]
        scale = (target + DINOV2_INTERPOLATE_OFFSET) / grid
        patches = pos[:, 1:].float().reshape(1, grid, grid, dim).permute(0, 3, 1, 2)
        patches = F.interpolate(patches, scale_factor=(scale, scale), mode="bicubic", antialias=False)
        if patches.shape[-2:] != (target, target):
            raise TriptychError(f"DINOv2 position grid {grid}x{grid} resized to {tuple(patches.shape[-2:])}, "
                                f"expected {target}x{target}")
        patches = patches.permute(0, 2, 3, 1).reshape(1, target * target, dim).to(pos.dtype)
        out["pos_embed"] = torch.cat([pos[:, :1], patches], dim=1)
    return out


def dinov2_published_state(arch: str = "vit_small_patch14_dinov2", grid: int = 37) -> dict[str, torch.Tensor]:
    """The keys and shapes of an official DINOv2 checkpoint, what ``dinov2_to_224`` converts: the timm
    model's state with the 518-pixel training grid (37x37 positions plus the class token) and ``mask_token``."""
    state = dict(build_vit(arch).state_dict())
    dim = state["pos_embed"].shape[-1]
    return {**state, "pos_embed": torch.empty(1, 1 + grid * grid, dim), "mask_token": torch.empty(1, dim)}


@dataclass(frozen=True)
class DinoEncoder:
    """A headless ViT returning the normalised CLS token, its transform, and the record of its weights."""

    model: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    arch: str
    weights: dict[str, Any]

    @property
    def key(self) -> str:
        return f"dino:{self.arch}:{self.weights.get('sha256')}"

    @torch.no_grad()
    def embed_image(self, image: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) RGB -> unit float64 CLS embedding."""
        out = self.model(self.preprocess(Image.fromarray(image)).unsqueeze(0))[0].double().numpy()
        norm = float(np.linalg.norm(out))
        if norm == 0.0 or not np.isfinite(norm):
            raise TriptychError("the DINO encoder returned a zero or non-finite embedding",
                                fix="check the weights and the input")
        return out / norm


@per_file_cache(maxsize=2)
def dino_encoder(weights_name: str = "dino_vits16", trunk: Path | None = None) -> DinoEncoder:
    """The registry's DINO backbone, loaded once per process through ``triptych.weights`` (sha256-checked;
    a missing file raises its error naming the file, URL and import command); ``trunk`` a user's file of
    the same layout in its place (``measure --weights``; a DINOv2 file at its published 518 px grid, as the
    registry's), loaded strictly."""
    from triptych import weights

    if weights_name not in DINO_MODELS:
        raise TriptychError(f"unknown DINO weights {weights_name!r}", fix=f"use one of: {', '.join(DINO_MODELS)}")
    record = weights.describe(weights_name) if trunk is None else weights.describe_user_file(trunk)
    state = weights.load_trunk(weights_name, trunk)
    if weights_name == "dinov2_vits14":
        state = dinov2_to_224(state)
    model = build_vit(DINO_MODELS[weights_name])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise TriptychError(f"{trunk or record['path']}: does not load strictly into timm's "
                            f"{DINO_MODELS[weights_name]} ({str(exc)[:300]})",
                            fix=f"pass a state dict of the layout of {weights_name}") from exc
    return DinoEncoder(model.eval(), dino_transform(), DINO_MODELS[weights_name], record)


def dino_similarity(generated: ImageLike, references: Sequence[ImageLike], *, model: str = "dino_vits16",
                    encoder: DinoEncoder | None = None, name: str | None = None,
                    reference_names: Sequence[str] | None = None, cache: EmbeddingCache | None = None,
                    trunk: Path | None = None) -> float:
    """Metric ``dino``: mean over the references of cosine(CLS(generated), CLS(reference)).

    ``model`` is the weights entry (the variant's param); ``encoder`` overrides it (tests); ``trunk`` a
    user's backbone file (``dino_encoder``). Same call as
    ``face_similarity``; with a ``cache`` each reference is embedded once per run. Raw, in [-1, 1].
    """
    if len(references) == 0:
        raise TriptychError(f"{name or 'image'}: DINO similarity needs at least one reference image",
                            fix="pass the identity's reference photos")
    encoder = encoder or dino_encoder(model, trunk)
    cache = cache if cache is not None else EmbeddingCache()

    def embed(image: ImageLike, label: str | None) -> np.ndarray:
        array, _ = load_image(image, label)
        return cache.lookup(encoder.key, array, encoder.embed_image)

    target = embed(generated, name)
    names = list(reference_names) if reference_names is not None else [None] * len(references)
    return float(np.mean([np.dot(target, embed(r, n)) for r, n in zip(references, names)]))
