"""PhotoMaker generation on diffusers' ``StableDiffusionXLPipeline``: the reference method of the
``celeb-25id-40prompt`` protocol, behind triptych's ``Generator`` interface.

What the reference pipeline does (TencentARC/PhotoMaker ``photomaker/pipeline.py``: ``load_photomaker_adapter``,
``encode_prompt_with_trigger_word``, ``__call__``; v1 prompt handling at ccd1f7c, v2 at 060b4fc), and how it
is reproduced here without copying it:

- the adapter file holds ``id_encoder`` (the ID encoder, ``photomaker_encoder``) and ``lora_weights`` (a
  LoRA on the UNet, loaded with adapter weight 1.0 and fused by the demos); the released files use diffusers'
  attention-processor keys, ``unet.<block>.attn{1,2}.processor.to_{q,k,v,out}_lora.{down,up}.weight``, with no
  alpha; the LoRA is fused here into the UNet's Linear weights (``fuse_lora``, which also reads the keys
  diffusers' ``save_lora_weights`` and peft write), so no ``peft`` is needed;
- v2 only: each reference photo's raw antelopev2 ArcFace embedding (``photomaker_faces``) goes into the ID
  encoder with the photos;
- the trigger word ``img`` is added to both SDXL tokenizers as a special token; it must follow the class
  word ("a photo of a man img"); ``insert_trigger`` puts it after the first class word of a protocol
  prompt, which names the identity by its class word only;
- the prompt is tokenised, the trigger dropped, the class token repeated once per ID embedding, and the
  (1, 77) class-token mask recorded (``photomaker_encoder.class_tokens_for_version``); each text encoder's
  penultimate hidden state (768 + 1280 = 2048) is concatenated and the pooled embedding is text_encoder_2's
  projection of the same ids; the ID encoder fuses the N reference images' stacked ID embeddings into the
  masked rows;
- a text-only prompt (the trigger's token removed and decoded) is encoded with the plain SDXL
  ``encode_prompt``, which also gives the negative embeddings; denoising steps ``i <= start_merge_step`` see
  the text-only prompt, later steps the ID-fused one (with the trigger prompt's pooled embedding);
  ``start_merge_step = int(style_strength_ratio / 100 * steps)``, capped at 30 (gradio demos; slider default
  20 %, so 10 of 50 steps). Here the stock diffusers ``__call__`` runs with the text-only conditioning and a
  step-end callback swaps in the fused one after step ``start_merge_step``;
- thesis / paper settings (``generation_settings_of_reference_method`` of the protocol file): SDXL 1.0,
  DDIM 50 steps, CFG 5, 4 reference images per ID; 1024 x 1024 (SDXL's native size, the pipeline default).

Seeds: the initial latents are drawn on the CPU from ``torch.Generator().manual_seed(seed)``, so a seed gives
the same noise on every device; DDIM with eta 0 draws nothing else.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import tempfile
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from triptych.baselines.photomaker_encoder import (
    CONFIGS,
    TRIGGER_WORD,
    IDEncoder,
    build_id_encoder,
    class_tokens_for_version,
    id_pixel_values,
    load_id_encoder_state,
    tokenize_for_version,
)
from triptych.baselines.photomaker_faces import ANTELOPEV2_WEIGHTS, antelopev2_embedder
from triptych.errors import InputError, TriptychError

SDXL_WEIGHTS = "sdxl_base_1_0"
MAX_MERGE_STEP = 30  # gradio_demo/app.py and app_v2.py: start_merge_step capped at 30
# Class words a protocol prompt may name its identity by (thesis 5.2.3: "man, woman, boy, girl, ..."),
# the same closed list as the portrait folders' suffixes.
CLASS_WORDS = ("man", "woman", "boy", "girl", "person", "child", "kid", "baby", "lady", "gentleman")
# PhotoMaker README usage example (v1 and v2): the negative prompt the authors show with their settings.
NEGATIVE_PROMPT = "(asymmetry, worst quality, low quality, illustration, 3d, 2d, painting, cartoons, sketch), open mouth"

# --- SDXL 1.0 base: the diffusers configs of stabilityai/stable-diffusion-xl-base-1.0 --------------------------
# (unet/, vae/, text_encoder/, text_encoder_2/ config.json and scheduler/scheduler_config.json of that repo);
# only the single-file checkpoint is downloaded, so the configs its conversion needs ship here.

SDXL_UNET_CONFIG: dict[str, Any] = {
    "act_fn": "silu", "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256, "attention_head_dim": [5, 10, 20], "block_out_channels": [320, 640, 1280],
    "center_input_sample": False, "class_embed_type": None, "class_embeddings_concat": False,
    "conv_in_kernel": 3, "conv_out_kernel": 3, "cross_attention_dim": 2048, "cross_attention_norm": None,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1, "dual_cross_attention": False, "encoder_hid_dim": None,
    "encoder_hid_dim_type": None, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4,
    "layers_per_block": 2, "mid_block_only_cross_attention": None, "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32,
    "num_attention_heads": None, "num_class_embeds": None, "only_cross_attention": False, "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816, "resnet_out_scale_factor": 1.0,
    "resnet_skip_time_act": False, "resnet_time_scale_shift": "default", "sample_size": 128,
    "time_cond_proj_dim": None, "time_embedding_act_fn": None, "time_embedding_dim": None,
    "time_embedding_type": "positional", "timestep_post_act": None, "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "upcast_attention": None,
    "use_linear_projection": True,
}
SDXL_VAE_CONFIG: dict[str, Any] = {
    "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "force_upcast": True, "in_channels": 3,
    "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 1024,
    "scaling_factor": 0.13025, "up_block_types": ["UpDecoderBlock2D"] * 4,
}
_CLIP_TEXT_COMMON: dict[str, Any] = {
    "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "initializer_factor": 1.0,
    "initializer_range": 0.02, "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "pad_token_id": 1,
    "vocab_size": 49408,
}
SDXL_TEXT_ENCODER_CONFIG: dict[str, Any] = {  # CLIP ViT-L/14 text tower (CLIPTextModel)
    **_CLIP_TEXT_COMMON, "hidden_act": "quick_gelu", "hidden_size": 768, "intermediate_size": 3072,
    "num_attention_heads": 12, "num_hidden_layers": 12, "projection_dim": 768,
}
SDXL_TEXT_ENCODER_2_CONFIG: dict[str, Any] = {  # OpenCLIP ViT-bigG/14 text tower (CLIPTextModelWithProjection)
    **_CLIP_TEXT_COMMON, "hidden_act": "gelu", "hidden_size": 1280, "intermediate_size": 5120,
    "num_attention_heads": 20, "num_hidden_layers": 32, "projection_dim": 1280,
}
SDXL_SCHEDULER_CONFIG: dict[str, Any] = {  # the repo's EulerDiscreteScheduler config; DDIM is built from it
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
    "num_train_timesteps": 1000, "prediction_type": "epsilon", "sample_max_value": 1.0,
    "set_alpha_to_one": False, "steps_offset": 1, "timestep_spacing": "leading", "trained_betas": None,
}
_MODEL_INDEX: dict[str, Any] = {
    "_class_name": "StableDiffusionXLPipeline", "force_zeros_for_empty_prompt": True,
    "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
    "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
}


# --- tokenizers ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _clip_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The OpenAI CLIP BPE vocabulary (49408 ids) and merges, built from the BPE file that open_clip ships,
    the way CLIP's ``SimpleTokenizer`` builds it; the same vocabulary as SDXL's two tokenizers (byte
    symbols, the same with ``</w>``, the 48894 merges, then ``<|startoftext|>`` and ``<|endoftext|>``)."""
    try:
        from open_clip.tokenizer import bytes_to_unicode
    except ImportError as exc:
        raise TriptychError("PhotoMaker's tokenizers are built from open_clip's CLIP vocabulary file",
                            fix='pip install open_clip_torch (the [personalization] extra)') from exc
    text = gzip.decompress((resources.files("open_clip") / "bpe_simple_vocab_16e6.txt.gz").read_bytes())
    lines = text.decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(line.split()) for line in lines]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges  # type: ignore[return-value]


def clip_tokenizer(pad_token: str) -> Any:
    """An SDXL tokenizer: ``tokenizer`` pads with ``<|endoftext|>``, ``tokenizer_2`` with ``!`` (id 0);
    both lower-case, 77 tokens."""
    from transformers import CLIPTokenizer

    vocab, merges = _clip_bpe()
    return CLIPTokenizer(vocab=dict(vocab), merges=list(merges), pad_token=pad_token, model_max_length=77)


def sdxl_tokenizers() -> tuple[Any, Any]:
    return clip_tokenizer("<|endoftext|>"), clip_tokenizer("!")


def ddim_scheduler(config: Mapping[str, Any] = SDXL_SCHEDULER_CONFIG) -> Any:
    """DDIM from the base model's scheduler config (README: ``DDIMScheduler.from_config(pipe.scheduler.config)``)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler.from_config(dict(config))


# --- trigger word ---------------------------------------------------------------------------------------------

def insert_trigger(prompt: str, trigger: str = TRIGGER_WORD, class_words: Sequence[str] = CLASS_WORDS) -> str:
    """A protocol prompt ("a man wearing a Superman outfit") -> PhotoMaker's ("a man img wearing a ...").

    README: the trigger follows the class word. A prompt that already holds the trigger as a word is
    returned unchanged; otherwise it goes after the first whole-word class word (case-insensitive). A
    prompt without a class word is an error.
    """
    if re.search(rf"(?<![\w]){re.escape(trigger)}(?![\w])", prompt):
        return prompt
    words = "|".join(re.escape(w) for w in sorted(class_words, key=len, reverse=True))
    match = re.search(rf"(?<![\w])({words})(?![\w])", prompt, flags=re.IGNORECASE)
    if match is None:
        raise InputError(f"PhotoMaker: the prompt {prompt!r} names no class word ({', '.join(class_words)})",
                         fix=f"name the identity by its class word, or write the trigger yourself: "
                             f"'a photo of a man {trigger}'")
    return f"{prompt[:match.end()]} {trigger}{prompt[match.end():]}"


# --- LoRA ---------------------------------------------------------------------------------------------------------

_LORA_SUFFIXES = (  # (key ending, factor): the LoRA key styles diffusers' loaders accept for a UNet
    (re.compile(r"^(.*)\.(to_[qkv]|to_out)_lora\.(down|up)\.weight$"), "processor"),
    (re.compile(r"^(.*)\.lora(?:_linear_layer)?\.(down|up)\.weight$"), "module"),
    (re.compile(r"^(.*)\.lora_(A|B)(?:\.[^.]+)?\.weight$"), "peft"),
)


def _lora_pairs(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, float]]:
    """Group LoRA tensors by target module path (``down`` / ``up``), plus any ``<module>.alpha`` scalars."""
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    alphas: dict[str, float] = {}
    unknown: list[str] = []
    for raw, tensor in state.items():
        key = raw[len("unet."):] if raw.startswith("unet.") else raw
        key = key.replace(".processor.", ".")
        if key.endswith(".alpha"):
            alphas[key[:-len(".alpha")]] = float(tensor)
            continue
        for pattern, style in _LORA_SUFFIXES:
            m = pattern.match(key)
            if m is None:
                continue
            if style == "processor":
                module = f"{m.group(1)}.{m.group(2)}" + (".0" if m.group(2) == "to_out" else "")
                part = m.group(3)
            else:
                module, part = m.group(1), {"A": "down", "B": "up"}.get(m.group(2), m.group(2))
            pairs.setdefault(module, {})[part] = tensor
            break
        else:
            unknown.append(raw)
    if unknown:
        raise TriptychError(f"PhotoMaker lora_weights: {len(unknown)} key(s) of no known LoRA style: "
                            f"{', '.join(unknown[:5])}", fix="pass the released photomaker-v*.bin unchanged")
    return pairs, alphas


def fuse_lora(unet: nn.Module, lora_state: Mapping[str, torch.Tensor], scale: float = 1.0) -> int:
    """Fuse a UNet LoRA into its Linear (or 1x1 conv) weights: ``W += scale * (alpha / rank) * up @ down``
    (alpha = rank when the file stores none, as diffusers assumes). Computed in float32, written back in
    the weight's dtype. Returns the number of modules changed; a key whose module is missing, or whose
    shapes do not fit, is an error that names it."""
    pairs, alphas = _lora_pairs(lora_state)
    modules = dict(unet.named_modules())
    problems: list[str] = []
    for path, parts in sorted(pairs.items()):
        target = modules.get(path)
        if set(parts) != {"down", "up"}:
            problems.append(f"{path}: has only {sorted(parts)}")
            continue
        if not isinstance(target, (nn.Linear, nn.Conv2d)):
            problems.append(f"{path}: no Linear or Conv2d of that name in the UNet")
            continue
        down = parts["down"].float().flatten(1)
        up = parts["up"].float().flatten(1)
        weight = target.weight
        if up.shape[1] != down.shape[0] or (up.shape[0], down.shape[1]) != (weight.shape[0], weight[0].numel()):
            problems.append(f"{path}: up {tuple(up.shape)} @ down {tuple(down.shape)} does not fit the weight "
                            f"{tuple(weight.shape)}")
            continue
        factor = scale * alphas.get(path, float(down.shape[0])) / float(down.shape[0])
        with torch.no_grad():
            delta = (up @ down).reshape(weight.shape) * factor
            weight.copy_((weight.float() + delta.to(weight.device)).to(weight.dtype))
    if problems:
        raise TriptychError(f"PhotoMaker lora_weights do not fit the SDXL UNet ({len(problems)} problem(s)): "
                            + "; ".join(problems[:5]),
                            fix="use the SDXL 1.0 base checkpoint with the released photomaker-v*.bin")
    return len(pairs)


# --- settings and the generator ---------------------------------------------------------------------------

@dataclass(frozen=True)
class GenerationSettings:
    """One PhotoMaker configuration; ``asdict`` goes into the job's JSON."""

    steps: int = 50  # DDIM 50 steps (protocol generation settings)
    guidance_scale: float = 5.0  # CFG 5
    style_strength_ratio: float = 20.0  # gradio demos' slider default (%)
    height: int = 1024
    width: int = 1024
    negative_prompt: str | None = NEGATIVE_PROMPT
    trigger_word: str = TRIGGER_WORD

    def __post_init__(self) -> None:
        if self.steps < 1 or not 0 <= self.style_strength_ratio <= 100 or self.guidance_scale < 0:
            raise InputError(f"PhotoMaker settings out of range: steps {self.steps}, style_strength_ratio "
                             f"{self.style_strength_ratio}, guidance_scale {self.guidance_scale}",
                             fix="steps >= 1, 0 <= style_strength_ratio <= 100, guidance_scale >= 0")
        if self.height % 8 or self.width % 8:
            raise InputError(f"PhotoMaker: height and width must be multiples of 8, got {self.height}x{self.width}",
                             fix="use 1024x1024 (the protocol) or another multiple of 8")

    @property
    def start_merge_step(self) -> int:
        """``int(style_strength_ratio / 100 * steps)``, at most 30 (gradio demos)."""
        return min(int(float(self.style_strength_ratio) / 100 * self.steps), MAX_MERGE_STEP)


@dataclass
class EncodedPrompt:
    """Conditioning of one prompt: ID-fused and text-only embeddings, their pooled ones, the negatives."""

    fused: torch.Tensor  # (1, 77, D)
    pooled: torch.Tensor  # (1, P): text_encoder_2 projection of the trigger prompt's clean ids
    text_only: torch.Tensor
    pooled_text_only: torch.Tensor
    negative: torch.Tensor
    negative_pooled: torch.Tensor
    class_tokens_mask: torch.Tensor  # (1, 77) bool, text_encoder_2's (the one passed to the ID encoder)
    prompt_text_only: str


class PhotoMakerGenerator:
    """``triptych.methods.Generator`` for PhotoMaker v1 / v2 on an SDXL pipeline.

    ``pipe`` is a ``StableDiffusionXLPipeline`` whose UNet already carries the fused PhotoMaker LoRA;
    ``encoder`` the loaded ID encoder. v2 also needs ``face_embedder``: reference image (3, H, W) ->
    the raw 512-d ArcFace embedding insightface's antelopev2 gives (``faces[0]['embedding']``).
    """

    def __init__(self, pipe: Any, encoder: IDEncoder, version: str, settings: GenerationSettings | None = None,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 face_embedder: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 provenance: Mapping[str, Any] | None = None) -> None:
        if version not in CONFIGS:
            raise TriptychError(f"unknown PhotoMaker version {version!r}", fix=f"use one of {', '.join(CONFIGS)}")
        if version == "v2" and face_embedder is None:
            raise TriptychError("PhotoMaker v2 needs the ArcFace embedding of every reference image "
                                "(insightface antelopev2), and no face embedder was given",
                                fix="pass face_embedder=..., or use photomaker-v1")
        self.version = version
        self.settings = settings or GenerationSettings()
        self.device = torch.device(device)
        self.dtype = dtype
        self.face_embedder = face_embedder
        self.provenance = dict(provenance or {})
        self.pipe = pipe.to(self.device, dtype)
        self.pipe.set_progress_bar_config(disable=True)
        self.encoder = encoder.to(self.device, dtype).eval().requires_grad_(False)
        for tokenizer in (pipe.tokenizer, pipe.tokenizer_2):
            tokenizer.add_tokens([self.settings.trigger_word], special_tokens=True)
        self.trigger_id = int(pipe.tokenizer_2.convert_tokens_to_ids(self.settings.trigger_word))

    def describe(self) -> dict[str, Any]:
        """Settings, derived values and weights, for the job's JSON."""
        return {"version": self.version, "settings": asdict(self.settings),
                "start_merge_step": self.settings.start_merge_step,
                "scheduler": type(self.pipe.scheduler).__name__, "eta": 0.0, "dtype": str(self.dtype).split(".")[-1],
                "device": str(self.device), "tokens_per_image": CONFIGS[self.version].tokens_per_image,
                "weights": self.provenance}

    def _encode_trigger_prompt(self, prompt: str, num_id_images: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``encode_prompt_with_trigger_word``: per tokenizer, clean ids + class-token mask, penultimate
        hidden states concatenated; pooled = text_encoder_2's projection."""
        hidden, pooled, mask = [], None, None
        for tokenizer, encoder in ((self.pipe.tokenizer, self.pipe.text_encoder),
                                   (self.pipe.tokenizer_2, self.pipe.text_encoder_2)):
            ids = tokenize_for_version(tokenizer, prompt, self.version)  # type: ignore[arg-type]
            tokens = class_tokens_for_version(ids, self.version, self.trigger_id, num_id_images,  # type: ignore[arg-type]
                                              int(tokenizer.pad_token_id), int(tokenizer.model_max_length))
            out = encoder(tokens.input_ids.to(self.device), output_hidden_states=True)
            hidden.append(out.hidden_states[-2])
            pooled, mask = out[0], tokens.class_tokens_mask
        assert pooled is not None and mask is not None
        return torch.cat(hidden, dim=-1).to(self.dtype), pooled.to(self.dtype), mask.to(self.device)

    def text_only_prompt(self, prompt: str) -> str:
        """The reference's text-only prompt: ``tokenizer.encode`` without special tokens, the trigger's id
        removed, decoded ("a man img wearing a hat" -> "a man wearing a hat")."""
        ids = self.pipe.tokenizer.encode(prompt, add_special_tokens=False)
        trigger = self.pipe.tokenizer.convert_tokens_to_ids(self.settings.trigger_word)
        ids.remove(trigger)
        return str(self.pipe.tokenizer.decode(ids))

    def encode(self, reference_images: Sequence[torch.Tensor], prompt: str) -> EncodedPrompt:
        """All conditioning of one prompt and one identity (trigger inserted if the prompt lacks it)."""
        prompt = insert_trigger(prompt, self.settings.trigger_word)
        n = len(reference_images)
        embeds, pooled, mask = self._encode_trigger_prompt(prompt, n)
        text_only = self.text_only_prompt(prompt)
        text, negative, pooled_text, negative_pooled = self.pipe.encode_prompt(
            prompt=text_only, device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=True,
            negative_prompt=self.settings.negative_prompt)
        pixels = id_pixel_values(reference_images).to(self.device, self.dtype)
        if self.version == "v2":
            assert self.face_embedder is not None
            faces = torch.stack([self.face_embedder(image).reshape(-1) for image in reference_images])
            fused = self.encoder(pixels, embeds, mask, faces.unsqueeze(0).to(self.device, self.dtype))
        else:
            fused = self.encoder(pixels, embeds, mask)
        return EncodedPrompt(fused, pooled, text, pooled_text, negative, negative_pooled, mask, text_only)

    def initial_latents(self, seed: int) -> torch.Tensor:
        """(1, C, H/8, W/8) standard-normal noise from a CPU generator seeded with ``seed``."""
        scale = self.pipe.vae_scale_factor
        shape = (1, int(self.pipe.unet.config.in_channels), self.settings.height // scale, self.settings.width // scale)
        generator = torch.Generator("cpu").manual_seed(int(seed))
        return torch.randn(shape, generator=generator, dtype=torch.float32).to(self.device, self.dtype)

    @torch.no_grad()
    def generate(self, reference_images: Sequence[torch.Tensor], prompt: str, seed: int) -> list[torch.Tensor]:
        """One image (3, H, W) float32 in [0, 1] on the CPU for one identity, prompt and seed."""
        if len(reference_images) == 0:
            raise InputError("PhotoMaker was given no reference images", fix="pass the identity's photos (4 in the protocol)")
        cond = self.encode(reference_images, prompt)
        merge_step = self.settings.start_merge_step
        fused = torch.cat([cond.negative, cond.fused], dim=0)
        fused_pooled = torch.cat([cond.negative_pooled, cond.pooled], dim=0)

        def swap_in_id(pipe: Any, step: int, timestep: Any, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            # after step `merge_step` the reference switches from the text-only to the ID-fused prompt
            return {"prompt_embeds": fused, "add_text_embeds": fused_pooled} if step == merge_step else {}

        out = self.pipe(
            prompt_embeds=cond.text_only, pooled_prompt_embeds=cond.pooled_text_only,
            negative_prompt_embeds=cond.negative, negative_pooled_prompt_embeds=cond.negative_pooled,
            num_inference_steps=self.settings.steps, guidance_scale=self.settings.guidance_scale,
            height=self.settings.height, width=self.settings.width, latents=self.initial_latents(seed), eta=0.0,
            output_type="pt", callback_on_step_end=swap_in_id,
            callback_on_step_end_tensor_inputs=["prompt_embeds", "add_text_embeds"])
        images = out.images.detach().to("cpu", torch.float32)
        if not torch.isfinite(images).all():
            raise TriptychError(f"PhotoMaker produced NaN/Inf for prompt {prompt!r}, seed {seed}",
                                fix="on a GPU, try --dtype float32 or bfloat16 (fp16 VAE overflow)")
        return [image for image in images]


# --- loading the released weights ---------------------------------------------------------------------------

def read_adapter(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``photomaker-v*.bin``: ``{'id_encoder': state, 'lora_weights': state}`` read once with
    ``torch.load(weights_only=True)`` (or a flat ``.safetensors`` with those two key prefixes)."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        from triptych.weights import load_state_dict

        flat = load_state_dict(path)
        parts = {p: {k[len(p) + 1:]: v for k, v in flat.items() if k.startswith(p + ".")}
                 for p in ("id_encoder", "lora_weights")}
    else:
        try:
            parts = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle errors of several kinds; the message says which
            raise TriptychError(f"{path}: not readable with torch.load(weights_only=True) ({exc})",
                                fix="re-download photomaker-v*.bin; triptych never unpickles arbitrary objects") from exc
    if not isinstance(parts, Mapping) or not all(isinstance(parts.get(k), Mapping) and parts[k]
                                                 for k in ("id_encoder", "lora_weights")):
        found = list(parts)[:5] if isinstance(parts, Mapping) else type(parts).__name__
        raise TriptychError(f"{path}: a PhotoMaker adapter holds 'id_encoder' and 'lora_weights'; found {found}",
                            fix="pass photomaker-v1.bin / photomaker-v2.bin as released")
    return dict(parts["id_encoder"]), dict(parts["lora_weights"])


def resolve_weights(names: Sequence[str]) -> dict[str, Path]:
    """Every registry file a method needs, checked at once: one error lists each missing file with its URL
    and import command (the weights manager's message per file), before anything is built."""
    from triptych import weights as registry_weights

    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in names:
        try:
            found[name] = registry_weights.resolve(name)
        except registry_weights.MissingWeightsError as exc:
            missing.append(exc.message)
    if missing:
        raise registry_weights.MissingWeightsError(
            f"PhotoMaker needs {len(names)} weights file(s); {len(missing)} missing:\n" + "\n".join(missing),
            fix="run 'triptych weights fetch NAME' for each (or, offline, download it and run "
                "'triptych weights import NAME PATH'), then retry")
    return found


def write_sdxl_config(folder: Path) -> Path:
    """A diffusers model folder without weights (model_index.json and the component configs), which
    ``from_single_file(config=...)`` reads instead of downloading them."""
    for sub, config in (("unet", {"_class_name": "UNet2DConditionModel", **SDXL_UNET_CONFIG}),
                        ("vae", {"_class_name": "AutoencoderKL", **SDXL_VAE_CONFIG}),
                        ("text_encoder", {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model",
                                          **SDXL_TEXT_ENCODER_CONFIG}),
                        ("text_encoder_2", {"architectures": ["CLIPTextModelWithProjection"],
                                            "model_type": "clip_text_model", **SDXL_TEXT_ENCODER_2_CONFIG})):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / sub / "config.json").write_text(json.dumps(config, indent=1))
    (folder / "scheduler").mkdir(exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(
        json.dumps({"_class_name": "DDIMScheduler", **SDXL_SCHEDULER_CONFIG}, indent=1))
    (folder / "model_index.json").write_text(json.dumps(_MODEL_INDEX, indent=1))
    return folder


def load_sdxl(checkpoint: Path, dtype: torch.dtype) -> Any:
    """SDXL 1.0 base from its single-file checkpoint, offline: configs from this module, tokenizers from
    open_clip's vocabulary, DDIM from the base scheduler config."""
    from diffusers import StableDiffusionXLPipeline

    tokenizer, tokenizer_2 = sdxl_tokenizers()
    with tempfile.TemporaryDirectory(prefix="triptych-sdxl-config-") as tmp:
        config = write_sdxl_config(Path(tmp))
        return StableDiffusionXLPipeline.from_single_file(
            str(checkpoint), config=str(config), local_files_only=True, torch_dtype=dtype,
            tokenizer=tokenizer, tokenizer_2=tokenizer_2, scheduler=ddim_scheduler(), add_watermarker=False)


def load_photomaker(version: str, device: str = "cuda", dtype: str | torch.dtype | None = None,
                    settings: GenerationSettings | None = None, sdxl: str | Path | None = None,
                    adapter: str | Path | None = None,
                    face_embedder: Callable[[torch.Tensor], torch.Tensor] | None = None) -> PhotoMakerGenerator:
    """The released method: SDXL 1.0 base (``sdxl_base_1_0``) + ``photomaker_v1`` / ``photomaker_v2``
    through the weights manager (or the given files), the LoRA fused, the encoder loaded strictly.
    v2 also takes each reference photo's ArcFace embedding: ``face_embedder``, by default insightface's
    antelopev2 pack (``photomaker_faces``; its two files come through the weights manager too).
    ``dtype`` defaults to float16 on CUDA (the demos) and float32 on the CPU."""
    from triptych import weights as registry_weights

    config = CONFIGS.get(version)
    if config is None:
        raise TriptychError(f"unknown PhotoMaker version {version!r}", fix=f"use one of {', '.join(CONFIGS)}")
    torch_dtype = _dtype(dtype, device)
    needed = [n for n, given in ((SDXL_WEIGHTS, sdxl), (config.weights, adapter)) if given is None]
    if version == "v2" and face_embedder is None:
        needed += ANTELOPEV2_WEIGHTS
    found = resolve_weights(needed)  # every missing file named at once, before gigabytes are read
    sdxl_path = Path(sdxl) if sdxl is not None else found[SDXL_WEIGHTS]
    adapter_path = Path(adapter) if adapter is not None else found[config.weights]
    provenance = {
        "sdxl": registry_weights.describe(SDXL_WEIGHTS) if sdxl is None else registry_weights.describe_user_file(sdxl_path),
        "adapter": (registry_weights.describe(config.weights) if adapter is None
                    else registry_weights.describe_user_file(adapter_path)),
    }
    id_state, lora_state = read_adapter(adapter_path)
    encoder = build_id_encoder(version, init_weights=False)  # type: ignore[arg-type]
    load_id_encoder_state(encoder, id_state, str(adapter_path))
    pipe = load_sdxl(sdxl_path, torch.float32)
    provenance["lora_modules_fused"] = fuse_lora(pipe.unet, lora_state)
    if version == "v2" and face_embedder is None:
        face_embedder = antelopev2_embedder(device)
        provenance["face_embedder"] = list(face_embedder.weights)
    return PhotoMakerGenerator(pipe, encoder, version, settings, device, torch_dtype, face_embedder, provenance)


def _dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None:
        return torch.float16 if str(device).startswith("cuda") else torch.float32
    table = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in table:
        raise InputError(f"unknown dtype {dtype!r}", fix=f"use one of {', '.join(table)}")
    return table[dtype]


def make_photomaker(version: str = "v1", device: str = "cuda", dtype: str | None = None, steps: int = 50,
                    guidance_scale: float = 5.0, style_strength_ratio: float = 20.0, height: int = 1024,
                    width: int = 1024, negative_prompt: str | None = NEGATIVE_PROMPT) -> PhotoMakerGenerator:
    """Registry factory (``baselines/specs/photomaker.yaml``)."""
    settings = GenerationSettings(steps, guidance_scale, style_strength_ratio, height, width, negative_prompt)
    return load_photomaker(version, device, dtype, settings)
