"""PhotoMaker's ID encoders (Li et al., CVPR 2024, "stacked ID embedding"): a checkpoint-compatible port.

Reference: TencentARC/PhotoMaker @ 060b4fc, ``photomaker/model.py`` (v1 ``PhotoMakerIDEncoder``: ``MLP``,
``FuseModule``), ``photomaker/model_v2.py`` (v2 ``PhotoMakerIDEncoder_CLIPInsightfaceExtendtoken``:
``QFormerPerceiver``) and ``photomaker/resampler.py`` (``FacePerceiverResampler``, ``PerceiverAttention``,
``FeedForward``); the prompt handling is ``photomaker/pipeline.py`` ``encode_prompt_with_trigger_word`` at
ccd1f7c (v1, the last pipeline before the v2 update) and at 060b4fc (v2).

Both encoders sit on the CLIP ViT-L/14 vision tower of ``transformers.CLIPVisionModelWithProjection``, with
the config PhotoMaker builds itself (``CLIPVisionConfig(**VISION_CONFIG_DICT)``: hidden 1024, intermediate
4096, 16 heads, 24 layers, patch 14, projection_dim 768; left at their defaults: image 224, 3 channels,
``quick_gelu``, LayerNorm eps 1e-5). The tower's ``vision_model`` and ``visual_projection`` are registered
directly on the encoder, so the state-dict keys, their order and shapes equal the ``id_encoder`` sub-dict of
the released ``photomaker-v1.bin`` / ``photomaker-v2.bin`` (407 / 463 entries, 326,273,024 / 543,395,840
parameters; checked against the fixture key lists ``photomaker_v{1,2}_keys.json``, transformers 5, no
renaming). ``vision_model.embeddings.position_ids`` is a non-persistent buffer; a checkpoint that carries it
anyway is accepted (the key is dropped).

Forward semantics (``forward(id_pixel_values, prompt_embeds, class_tokens_mask[, id_embeds])``):

- v1: the N ID images (B, N, 3, 224, 224) go through the tower; the pooled output (post-LayerNorm CLS
  token, 1024) is projected to 768 (``visual_projection``) and to 1280 (``visual_projection_2``) and the two
  are concatenated: one 2048-d ID embedding per image.
- v2: the tower's ``last_hidden_state`` (before post-LayerNorm; the pooled output and both projections
  are unused, though they stay in the checkpoint) feeds a Q-Former: the raw (not L2-normalised) 512-d
  ArcFace embedding of each image is projected to 2 tokens of 2048 (Linear 512->2048, GELU, Linear
  2048->4096, LayerNorm), refined by a 4-layer perceiver resampler that attends over the 257 patch tokens
  (projected 1024->2048), and added back: two 2048-d ID embeddings per image.
- both: the prompt rows marked by ``class_tokens_mask`` (the class word, repeated once per ID embedding)
  are fused with the ID embeddings in order (``concat -> MLP(4096->2048) + class row -> residual MLP ->
  LayerNorm``) and written back; every other row is returned bit for bit. Unlike the reference, which
  writes into the ``prompt_embeds`` it is given, the input is never modified.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, NamedTuple, Sequence

import torch
from torch import nn

from triptych.errors import TriptychError
from triptych.weights import state_mismatch

Version = Literal["v1", "v2"]

TRIGGER_WORD = "img"  # load_photomaker_adapter(trigger_word='img'), added to both SDXL tokenizers
MAX_LENGTH = 77  # CLIP tokenizers' model_max_length
EMBED_DIM = 2048  # SDXL prompt embedding: CLIP-L penultimate (768) || OpenCLIP bigG penultimate (1280)
ARCFACE_DIM = 512  # insightface faces[0]['embedding'], raw
POSITION_IDS_KEY = "vision_model.embeddings.position_ids"

# CLIPVisionConfig(**VISION_CONFIG_DICT) of model.py / model_v2.py; everything else is the config default.
CLIP_VISION_CONFIG: dict[str, int] = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_attention_heads": 16,
    "num_hidden_layers": 24,
    "patch_size": 14,
    "projection_dim": 768,
}


@dataclass(frozen=True)
class EncoderConfig:
    """What differs between the two released ID encoders (facts of the reference code and key lists)."""

    version: str
    reference: str  # reference class name
    weights: str  # triptych weights-registry name of the released adapter
    tokens_per_image: int  # ID embeddings per image = class-word copies per image in the prompt
    state_dict_entries: int
    parameters: int


CONFIGS: dict[str, EncoderConfig] = {
    "v1": EncoderConfig("v1", "PhotoMakerIDEncoder", "photomaker_v1", 1, 407, 326_273_024),
    "v2": EncoderConfig("v2", "PhotoMakerIDEncoder_CLIPInsightfaceExtendtoken", "photomaker_v2", 2, 463,
                        543_395_840),
}


def _config(version: str) -> EncoderConfig:
    if version not in CONFIGS:
        raise TriptychError(f"unknown PhotoMaker version {version!r}", fix=f"use one of: {', '.join(CONFIGS)}")
    return CONFIGS[version]


# --- building blocks ----------------------------------------------------------------------------------------

class FuseMLP(nn.Module):
    """Reference ``MLP``: LayerNorm -> Linear -> GELU (erf) -> Linear, plus the input when ``residual``."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int, residual: bool) -> None:
        super().__init__()
        if residual and in_dim != out_dim:
            raise ValueError("a residual MLP needs in_dim == out_dim")
        self.layernorm = nn.LayerNorm(in_dim)
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)
        self.act_fn = nn.GELU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc2(self.act_fn(self.fc1(self.layernorm(x))))
        return y + x if self.residual else y


class FuseModule(nn.Module):
    """Reference ``FuseModule(2048)``: merges each class-word row with one ID embedding.

    ``fuse(c, e) = LayerNorm(mlp2(mlp1([c, e]) + c))`` with ``mlp1`` 4096 -> 2048 -> 2048 (no residual)
    and ``mlp2`` 2048 -> 2048 -> 2048 (residual).
    """

    def __init__(self, embed_dim: int = EMBED_DIM) -> None:
        super().__init__()
        self.mlp1 = FuseMLP(2 * embed_dim, embed_dim, embed_dim, residual=False)
        self.mlp2 = FuseMLP(embed_dim, embed_dim, embed_dim, residual=True)
        self.layer_norm = nn.LayerNorm(embed_dim)

    def fuse(self, class_rows: torch.Tensor, id_rows: torch.Tensor) -> torch.Tensor:
        merged = self.mlp1(torch.cat([class_rows, id_rows], dim=-1)) + class_rows
        return self.layer_norm(self.mlp2(merged))

    def forward(self, prompt_embeds: torch.Tensor, id_embeds: torch.Tensor,
                class_tokens_mask: torch.Tensor) -> torch.Tensor:
        """``prompt_embeds`` (B, L, D), ``id_embeds`` (B, N, T, D), ``class_tokens_mask`` (B, L) bool ->
        a new (B, L, D) tensor with the masked rows replaced, in row order, by the fused embeddings.

        Which ID embeddings are used follows the reference: image ``i`` counts when ``i`` is smaller than
        the number of True entries of the mask (the reference counts the whole mask, so it handles one
        prompt at a time; here each prompt row is counted on its own, identical for B = 1). Then the
        number of masked rows must equal the number of embeddings used.
        """
        if prompt_embeds.ndim != 3 or id_embeds.ndim != 4 or class_tokens_mask.shape != prompt_embeds.shape[:2]:
            raise TriptychError(
                f"PhotoMaker fuse: expected prompt_embeds (B, L, D), id_embeds (B, N, T, D) and a (B, L) mask, got "
                f"{tuple(prompt_embeds.shape)}, {tuple(id_embeds.shape)} and {tuple(class_tokens_mask.shape)}",
                fix="build the mask with class_tokens() from the same token ids as prompt_embeds")
        mask = class_tokens_mask.to(device=prompt_embeds.device, dtype=torch.bool)
        id_embeds = id_embeds.to(prompt_embeds.dtype)
        batch, num_images, tokens, dim = id_embeds.shape
        counts = mask.sum(dim=1).tolist()
        used = [id_embeds[b, :min(num_images, int(counts[b]))].reshape(-1, dim) for b in range(batch)]
        id_rows = torch.cat(used, dim=0)
        total = int(sum(counts))
        if id_rows.shape[0] != total:
            raise TriptychError(
                f"PhotoMaker fuse: class_tokens_mask marks {total} prompt position(s) but the encoder gives "
                f"{id_rows.shape[0]} ID embedding(s) ({num_images} image(s) x {tokens} token(s) per image)",
                fix=f"build the mask for {num_images} ID image(s) with tokens_per_image={tokens} "
                    "(v1: 1, v2: 2), and keep the class word within the first 77 tokens")
        flat = prompt_embeds.reshape(-1, prompt_embeds.shape[-1])
        fused = self.fuse(flat[mask.reshape(-1)], id_rows).to(prompt_embeds.dtype)
        out = flat.masked_scatter(mask.reshape(-1, 1), fused)
        return out.reshape(prompt_embeds.shape)


class PerceiverAttention(nn.Module):
    """Reference ``PerceiverAttention``: latents attend over [features; latents] (no biases).

    Both inputs are LayerNorm'd (``norm1`` features, ``norm2`` latents); q and k are each scaled by
    ``dim_head ** -1/4`` before the product and the softmax runs in float32.
    """

    def __init__(self, dim: int, dim_head: int, heads: int) -> None:
        super().__init__()
        self.dim_head = dim_head
        self.heads = heads
        inner = dim_head * heads
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.heads, self.dim_head).transpose(1, 2)

    def forward(self, features: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        features = self.norm1(features)
        latents = self.norm2(latents)
        b, n, _ = latents.shape
        keys, values = self.to_kv(torch.cat([features, latents], dim=1)).chunk(2, dim=-1)
        q, k, v = self._heads(self.to_q(latents)), self._heads(keys), self._heads(values)
        scale = 1.0 / math.sqrt(math.sqrt(self.dim_head))
        logits = (q * scale) @ (k * scale).transpose(-2, -1)
        weights = torch.softmax(logits.float(), dim=-1).to(logits.dtype)
        return self.to_out((weights @ v).transpose(1, 2).reshape(b, n, -1))


def feed_forward(dim: int, mult: int) -> nn.Sequential:
    """Reference ``FeedForward``: an ``nn.Sequential`` (keys .0 LayerNorm, .1 Linear, .3 Linear; no biases
    in the Linears) dim -> dim * mult -> dim with an erf GELU."""
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(),
                         nn.Linear(dim * mult, dim, bias=False))


class FacePerceiverResampler(nn.Module):
    """Reference ``FacePerceiverResampler``: project the image features, then ``depth`` x (attention +
    feed-forward, each residual) on the latents, then Linear and LayerNorm."""

    def __init__(self, dim: int, depth: int, dim_head: int, heads: int, embedding_dim: int, output_dim: int,
                 ff_mult: int) -> None:
        super().__init__()
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.proj_out = nn.Linear(dim, output_dim)
        self.norm_out = nn.LayerNorm(output_dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, dim_head, heads), feed_forward(dim, ff_mult)])
            for _ in range(depth))

    def forward(self, latents: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        features = self.proj_in(features)
        for attention, ff in self.layers:  # type: ignore[misc]
            latents = latents + attention(features, latents)
            latents = latents + ff(latents)
        return self.norm_out(self.proj_out(latents))


class QFormerPerceiver(nn.Module):
    """Reference ``QFormerPerceiver(512, 2048, num_tokens=2)``: ArcFace embedding -> ``num_tokens`` tokens,
    refined against the CLIP patch tokens and added back (``use_residual=True``, weight 1.0).

    Resampler: dim 2048, depth 4, dim_head 128, heads 2048 // 128 = 16, embedding_dim 1024 (CLIP width),
    output 2048, ff_mult 4. (A test model narrower than 128 uses one head of its full width.)
    """

    def __init__(self, id_dim: int = ARCFACE_DIM, dim: int = EMBED_DIM, num_tokens: int = 2,
                 clip_dim: int = 1024, ratio: int = 4) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.dim = dim
        self.token_proj = nn.Sequential(nn.Linear(id_dim, id_dim * ratio), nn.GELU(),
                                        nn.Linear(id_dim * ratio, dim * num_tokens))
        self.token_norm = nn.LayerNorm(dim)
        self.perceiver_resampler = FacePerceiverResampler(
            dim=dim, depth=4, dim_head=min(128, dim), heads=max(1, dim // 128), embedding_dim=clip_dim, output_dim=dim,
            ff_mult=4)

    def forward(self, id_embeds: torch.Tensor, last_hidden_state: torch.Tensor) -> torch.Tensor:
        tokens = self.token_norm(self.token_proj(id_embeds).reshape(-1, self.num_tokens, self.dim))
        return tokens + self.perceiver_resampler(tokens, last_hidden_state)


# --- the encoders -------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _skip_init(skip: bool) -> Iterator[None]:
    """transformers' ``no_init_weights`` (torch and transformers initialisers become no-ops) when ``skip``;
    building the 300M-parameter tower otherwise spends ~10 s on random initialisation that a strict load
    overwrites entirely. ``position_ids`` is created by ``arange`` at construction, not by an initialiser."""
    if not skip:
        yield
        return
    try:
        from transformers.initialization import no_init_weights  # transformers >= 5
    except ImportError:  # pragma: no cover - transformers 4.x
        from transformers.modeling_utils import no_init_weights  # type: ignore[attr-defined,no-redef]
    with no_init_weights():
        yield


def _clip_tower(attn_implementation: str, overrides: Mapping[str, int] | None = None) -> nn.Module:
    try:
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    except ImportError as exc:
        raise TriptychError("the PhotoMaker ID encoder needs the 'transformers' package",
                            fix='pip install "transformers>=5" (the [personalization] extra)') from exc
    config = CLIPVisionConfig(**{**CLIP_VISION_CONFIG, **(overrides or {})}, attn_implementation=attn_implementation)
    return CLIPVisionModelWithProjection(config)


def _check_pixels(id_pixel_values: torch.Tensor) -> tuple[int, int]:
    if id_pixel_values.ndim != 5 or tuple(id_pixel_values.shape[2:]) != (3, 224, 224):
        raise TriptychError(f"PhotoMaker: id_pixel_values must be (B, N, 3, 224, 224), got "
                            f"{tuple(id_pixel_values.shape)}",
                            fix="make them with id_pixel_values(images): (1, N, 3, 224, 224)")
    return int(id_pixel_values.shape[0]), int(id_pixel_values.shape[1])


@dataclass(frozen=True)
class EncoderOutput:
    """One forward pass: the updated prompt and what led to it (for debugging against the reference)."""

    prompt_embeds: torch.Tensor  # (B, 77, 2048), class-word rows replaced
    id_embeds: torch.Tensor  # (B, N, T, 2048): the FuseModule's ID input (v2: the Q-Former output)
    last_hidden_state: torch.Tensor  # (B*N, 257, 1024): CLIP last layer, before post-LayerNorm
    pooler_output: torch.Tensor  # (B*N, 1024): post-LayerNorm CLS token (used by v1 only)


class PhotoMakerIDEncoderV1(nn.Module):
    """v1, reference ``PhotoMakerIDEncoder``: keys ``vision_model.*``, ``visual_projection``,
    ``visual_projection_2`` (1024 -> 1280, no bias), ``fuse_module.*``, in that order."""

    ignored_state_keys = (POSITION_IDS_KEY,)  # a stale buffer some saves hold (load_id_encoder_state)

    config = CONFIGS["v1"]

    def __init__(self, attn_implementation: str = "sdpa", init_weights: bool = True,
                 vision_config: Mapping[str, int] | None = None, embed_dim: int = EMBED_DIM) -> None:
        """``vision_config`` (CLIPVisionConfig overrides) and ``embed_dim`` exist for small test models of
        the same structure (a generation pipeline on a tiny SDXL); the defaults are the released encoder."""
        super().__init__()
        with _skip_init(not init_weights):
            tower = _clip_tower(attn_implementation, vision_config)
            self.vision_model = tower.vision_model
            self.visual_projection = tower.visual_projection
            self.visual_projection_2 = nn.Linear(tower.config.hidden_size,
                                                 embed_dim - tower.config.projection_dim, bias=False)
            self.fuse_module = FuseModule(embed_dim)

    def run(self, id_pixel_values: torch.Tensor, prompt_embeds: torch.Tensor,
            class_tokens_mask: torch.Tensor) -> EncoderOutput:
        b, n = _check_pixels(id_pixel_values)
        clip = self.vision_model(pixel_values=id_pixel_values.reshape(b * n, 3, 224, 224))
        pooled = clip.pooler_output
        id_embeds = torch.cat([self.visual_projection(pooled), self.visual_projection_2(pooled)], dim=-1)
        id_embeds = id_embeds.reshape(b, n, 1, -1)
        out = self.fuse_module(prompt_embeds, id_embeds, class_tokens_mask)
        return EncoderOutput(out, id_embeds, clip.last_hidden_state, pooled)

    def forward(self, id_pixel_values: torch.Tensor, prompt_embeds: torch.Tensor,
                class_tokens_mask: torch.Tensor) -> torch.Tensor:
        """(B, N, 3, 224, 224) CLIP-normalised ID images, (B, 77, 2048) prompt, (B, 77) mask -> prompt."""
        return self.run(id_pixel_values, prompt_embeds, class_tokens_mask).prompt_embeds


class PhotoMakerIDEncoderV2(nn.Module):
    """v2, reference ``PhotoMakerIDEncoder_CLIPInsightfaceExtendtoken``: keys ``vision_model.*``,
    ``visual_projection``, ``fuse_module.*``, ``visual_projection_2``, ``qformer_perceiver.*``, in that
    order. ``visual_projection``, ``visual_projection_2`` and ``vision_model.post_layernorm`` do not affect
    the output but are part of the checkpoint."""

    ignored_state_keys = (POSITION_IDS_KEY,)  # a stale buffer some saves hold (load_id_encoder_state)

    config = CONFIGS["v2"]

    def __init__(self, attn_implementation: str = "sdpa", init_weights: bool = True,
                 vision_config: Mapping[str, int] | None = None, embed_dim: int = EMBED_DIM) -> None:
        """``vision_config`` and ``embed_dim``: as for v1 (small test models; the defaults are the release)."""
        super().__init__()
        with _skip_init(not init_weights):
            tower = _clip_tower(attn_implementation, vision_config)
            self.vision_model = tower.vision_model
            self.visual_projection = tower.visual_projection
            self.fuse_module = FuseModule(embed_dim)
            width = tower.config.hidden_size
            self.visual_projection_2 = nn.Linear(width, embed_dim - tower.config.projection_dim, bias=False)
            self.qformer_perceiver = QFormerPerceiver(ARCFACE_DIM, embed_dim, self.config.tokens_per_image, width)

    def run(self, id_pixel_values: torch.Tensor, prompt_embeds: torch.Tensor, class_tokens_mask: torch.Tensor,
            id_embeds: torch.Tensor) -> EncoderOutput:
        b, n = _check_pixels(id_pixel_values)
        if id_embeds.numel() != b * n * ARCFACE_DIM:
            raise TriptychError(f"PhotoMaker v2: id_embeds must hold one {ARCFACE_DIM}-d ArcFace embedding per ID "
                                f"image ({b} x {n}), got shape {tuple(id_embeds.shape)}",
                                fix="stack insightface faces[0]['embedding'] (raw) per image: (1, N, 512)")
        clip = self.vision_model(pixel_values=id_pixel_values.reshape(b * n, 3, 224, 224))
        tokens = self.qformer_perceiver(id_embeds.reshape(b * n, ARCFACE_DIM).to(clip.last_hidden_state.dtype),
                                        clip.last_hidden_state)
        tokens = tokens.reshape(b, n, self.config.tokens_per_image, -1)
        out = self.fuse_module(prompt_embeds, tokens, class_tokens_mask)
        return EncoderOutput(out, tokens, clip.last_hidden_state, clip.pooler_output)

    def forward(self, id_pixel_values: torch.Tensor, prompt_embeds: torch.Tensor, class_tokens_mask: torch.Tensor,
                id_embeds: torch.Tensor) -> torch.Tensor:
        """As v1, plus ``id_embeds`` (B, N, 512): the raw ArcFace embedding of each ID image."""
        return self.run(id_pixel_values, prompt_embeds, class_tokens_mask, id_embeds).prompt_embeds


IDEncoder = PhotoMakerIDEncoderV1 | PhotoMakerIDEncoderV2  # either version


def build_id_encoder(version: Version, *, init_weights: bool = True,
                     attn_implementation: str = "sdpa") -> IDEncoder:
    """A fresh v1 / v2 ID encoder in eval mode (float32 on the CPU).

    ``init_weights=False`` skips the random initialisation (parameters are left uninitialised): only for a
    model whose every parameter is loaded next, as ``load_id_encoder`` and the weights rule do.
    ``attn_implementation`` is the CLIP tower's (``sdpa``, as the fixture ran, or ``eager``).
    """
    cls = PhotoMakerIDEncoderV1 if _config(version).version == "v1" else PhotoMakerIDEncoderV2
    return cls(attn_implementation=attn_implementation, init_weights=init_weights).eval()


# --- strict loading -----------------------------------------------------------------------------------------

def load_id_encoder_state(model: IDEncoder, state: Mapping[str, torch.Tensor],
                          source: str = "state dict") -> None:
    """Load an ``id_encoder`` state dict strictly (values are cast to the model's float32).

    A stray ``vision_model.embeddings.position_ids`` (saved by transformers versions where it was a
    persistent buffer) is ignored; any other missing, unexpected or mis-shaped key is a ``TriptychError``
    that names it, with a hint when the file is the other PhotoMaker version or is prefixed.
    """
    config = model.config
    state = {k: v for k, v in state.items() if k not in model.ignored_state_keys}
    expected = model.state_dict()
    mismatch = state_mismatch(expected, state)
    if not mismatch:
        model.load_state_dict(state, strict=True)
        return
    missing, extra = mismatch.missing, mismatch.unexpected
    hint = ""
    if config.version == "v1" and any(k.startswith("qformer_perceiver.") for k in extra):
        hint = "; it holds 'qformer_perceiver.*', so it is a PhotoMaker v2 encoder: use version 'v2'"
    elif config.version == "v2" and missing and all(k.startswith("qformer_perceiver.") for k in missing):
        hint = "; it has no 'qformer_perceiver.*', so it is a PhotoMaker v1 encoder: use version 'v1'"
    elif extra and all(k.startswith("id_encoder.") or k.startswith("lora_weights.") for k in extra):
        hint = "; its keys start with 'id_encoder.': it is the whole adapter, flattened (load_id_encoder unwraps it)"
    elif extra and all(k.startswith("module.") for k in extra):
        hint = "; its keys start with 'module.' (a DataParallel save): strip that prefix first"
    filename = f"photomaker-{config.version}.bin"
    raise TriptychError(
        f"{source} does not fit the PhotoMaker {config.version} ID encoder ({len(expected)} keys): "
        + mismatch.describe() + hint,
        fix=f"pass {filename} ({{'id_encoder': ..., 'lora_weights': ...}}), its 'id_encoder' state dict, or a "
            "state dict saved from this port")


def _unwrap_adapter(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A flat adapter (the pipeline's safetensors form: ``id_encoder.*`` and ``lora_weights.*`` keys) -> the
    ``id_encoder`` entries without their prefix; any other state dict is returned unchanged."""
    prefix = "id_encoder."
    if any(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def _read_user_file(path: Path) -> dict[str, torch.Tensor]:
    from triptych import weights as registry_weights

    if path.suffix.lower() == ".safetensors":
        return _unwrap_adapter(registry_weights.load_state_dict(path))
    try:
        return registry_weights.load_state_dict(path, "id_encoder")
    except TriptychError as wrapped_error:
        try:
            return _unwrap_adapter(registry_weights.load_state_dict(path))
        except TriptychError:
            raise wrapped_error from None


class LoadedIDEncoder(NamedTuple):
    encoder: IDEncoder
    weights: dict[str, Any]  # provenance: triptych.weights.describe / describe_user_file


def load_id_encoder(version: Version, weights: str | Path | None = None) -> LoadedIDEncoder:
    """The released ID encoder, loaded strictly, in eval mode without gradients, float32 on the CPU.

    ``weights=None``: the registry entry ``photomaker_v1`` / ``photomaker_v2`` (verified by sha256, unwrapped
    by its container key ``id_encoder``); the file must have been fetched or imported (``triptych weights
    fetch photomaker_v1``). A path: ``photomaker-v*.bin`` (``{'id_encoder', 'lora_weights'}``), a bare
    ``id_encoder`` state dict, or a ``.safetensors`` (flat, or with ``id_encoder.`` prefixes), recorded with
    its sha256 (``describe_user_file``). Returns the encoder and that provenance record.
    """
    from triptych import weights as registry_weights

    config = _config(version)
    if weights is None:
        spec = registry_weights.get_spec(config.weights)
        path = registry_weights.resolve(config.weights)  # a missing file raises here, before any building
        state = registry_weights.load_state_dict(path, spec.container_key)
        source = f"weights {config.weights!r} ({path})"
    else:
        path = Path(weights).expanduser()
        state = _read_user_file(path)
        source = str(path)
    model = build_id_encoder(version, init_weights=False)
    load_id_encoder_state(model, state, source)
    del state
    provenance = (registry_weights.describe(config.weights) if weights is None
                  else registry_weights.describe_user_file(path))
    return LoadedIDEncoder(model.eval().requires_grad_(False), provenance)


# --- trigger word and class-token mask ----------------------------------------------------------------------

@dataclass(frozen=True)
class ClassTokens:
    """The token ids a text encoder sees and where the ID embeddings go.

    ``input_ids`` (1, max_length) int64: the prompt without the trigger, the class token repeated once
    per ID embedding, truncated / padded to ``max_length``; ``class_tokens_mask`` (1, max_length) bool:
    True on ``[class_token_index, class_token_index + num_id_images * tokens_per_image)`` (cut at
    ``max_length``); ``class_token_index``: the position of the token just before the trigger once the
    trigger is removed.
    """

    input_ids: torch.Tensor
    class_tokens_mask: torch.Tensor
    class_token_index: int


def class_tokens(token_ids: Sequence[int], trigger_id: int, num_id_images: int, tokens_per_image: int,
                 pad_id: int, max_length: int = MAX_LENGTH) -> ClassTokens:
    """The pipeline's ``encode_prompt_with_trigger_word`` on one tokenised prompt (both versions).

    Drop every ``trigger_id``; there must be exactly one (the reference raises ``ValueError`` otherwise).
    The class token is the token just before the trigger (for a class word of several BPE tokens, its
    last one); it is replaced by ``num_id_images * tokens_per_image`` copies of itself, then the ids are
    cut or padded with ``pad_id`` to ``max_length``. Which ids to pass differs by version:
    ``tokenize_for_version`` says. Unlike the reference, a trigger with no word before it (class token =
    BOS) is refused.
    """
    if num_id_images < 1 or tokens_per_image < 1:
        raise TriptychError(f"PhotoMaker needs at least one ID image and token (got {num_id_images} image(s), "
                            f"{tokens_per_image} token(s) per image)", fix="pass one reference photo or more")
    ids = [int(t) for t in token_ids]
    positions = [i for i, t in enumerate(ids) if t == trigger_id]
    if len(positions) != 1:
        raise TriptychError(
            f"the prompt holds the trigger word {len(positions)} times (token id {trigger_id}); PhotoMaker needs "
            "it exactly once",
            fix=f"write the trigger right after the class word, once, e.g. 'a photo of a man {TRIGGER_WORD}'")
    index = positions[0] - 1  # position of the preceding token once the trigger is gone
    if index < 1:
        raise TriptychError(f"the trigger word (token id {trigger_id}) has no class word before it",
                            fix=f"write it right after the class word, e.g. 'a photo of a man {TRIGGER_WORD}'")
    clean = ids[:positions[0]] + ids[positions[0] + 1:]
    copies = num_id_images * tokens_per_image
    clean = clean[:index] + [clean[index]] * copies + clean[index + 1:]
    clean = clean[:max_length] + [pad_id] * max(0, max_length - len(clean))
    mask = torch.zeros(1, max_length, dtype=torch.bool)
    mask[0, index:index + copies] = True
    return ClassTokens(torch.tensor([clean], dtype=torch.long), mask, index)


def tokenize_for_version(tokenizer: Any, prompt: str, version: Version) -> list[int]:
    """The ids ``class_tokens`` takes, made as the version's pipeline makes them (a CLIPTokenizer with the
    trigger added by ``add_tokens([TRIGGER_WORD], special_tokens=True)``).

    v1 (pipeline at ccd1f7c): ``tokenizer.encode(prompt)``: BOS ... EOS, neither padded nor truncated
    (the cut to 77 comes after the class word is repeated). v2 (060b4fc): ``tokenizer(prompt,
    padding='max_length', max_length=model_max_length, truncation=True)``: already 77 ids, so a trigger
    beyond the 76th token is lost, and the repeats push the tail (EOS included) past 77 and off.
    """
    _config(version)
    if version == "v1":
        return [int(t) for t in tokenizer.encode(prompt)]
    encoded = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True)
    return [int(t) for t in encoded["input_ids"]]


def class_tokens_for_version(token_ids: Sequence[int], version: Version, trigger_id: int, num_id_images: int,
                             pad_id: int, max_length: int = MAX_LENGTH) -> ClassTokens:
    """``class_tokens`` with the version's tokens per image (v1: 1, the ccd1f7c pipeline; v2: 2, the HEAD
    pipeline's ``num_tokens``). At HEAD the pipeline also gives v1 two copies per image, which the v1
    encoder cannot take (a size-mismatch RuntimeError); this port keeps v1 at one."""
    return class_tokens(token_ids, trigger_id, num_id_images, _config(version).tokens_per_image, pad_id,
                        max_length)


# --- ID image preprocessing ---------------------------------------------------------------------------------

def _image_processor() -> Any:
    """The pipeline's ``CLIPImageProcessor()`` with its built-in defaults (shortest edge 224, PIL bicubic,
    centre crop 224, /255, OpenAI CLIP mean and std). transformers 5 makes ``CLIPImageProcessor`` a
    torchvision backend whose resize differs from the PIL one by up to 0.015 on the fixture images; the
    reference ran the PIL path, which transformers 5 names ``CLIPImageProcessorPil``."""
    try:
        from transformers import CLIPImageProcessorPil as processor_class  # transformers >= 5
    except ImportError:  # pragma: no cover - transformers 4.x: the PIL implementation is the default one
        from transformers import CLIPImageProcessor as processor_class  # type: ignore[no-redef]
    return processor_class()


def id_pixel_values(images: Sequence[torch.Tensor]) -> torch.Tensor:
    """Reference photos in triptych's convention (each (3, H, W) float32 in [0, 1], 8-bit values) ->
    ``id_pixel_values`` (1, N, 3, 224, 224), as the pipeline makes them from the PIL images
    (``id_image_processor(images, return_tensors='pt').pixel_values.unsqueeze(0)``)."""
    from PIL import Image

    if len(images) == 0:
        raise TriptychError("PhotoMaker was given no ID images", fix="pass one reference photo or more")
    pil = []
    for i, image in enumerate(images):
        if image.ndim != 3 or image.shape[0] != 3:
            raise TriptychError(f"ID image {i}: expected (3, H, W), got {tuple(image.shape)}",
                                fix="pass RGB channel-first tensors (triptych.methods)")
        array = (image.detach().to("cpu", torch.float32).clamp(0, 1) * 255).round().to(torch.uint8)
        pil.append(Image.fromarray(array.permute(1, 2, 0).numpy()))  # uint8 (H, W, 3): RGB
    return _image_processor()(pil, return_tensors="pt")["pixel_values"].unsqueeze(0)
