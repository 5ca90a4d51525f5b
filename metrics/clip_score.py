"""CLIP-T and CLIP-I (docs/protocols/personalization.md, "Metrics": the DreamBooth convention), with OpenAI
CLIP through open_clip.

- CLIP-T: cosine(text embedding of the prompt with the class word, image embedding). The prompt is taken
  as given: the caller puts the class word in (``a photo of a man ...``), as the protocol's prompts do.
- CLIP-I: mean cosine between the generated image's embedding and each reference image's embedding.

Values are raw cosines in [-1, 1]; the thesis prints x100, applied when reported rows are loaded.

Encoder (pinned per variant, recorded in every result through the weights registry): OpenAI CLIP,
open_clip model ``ViT-B-32`` with pretrained tag ``openai`` (weights entry ``clip_vit_b32_openai``) for
variant ``dreambooth``, ``ViT-L-14`` / ``openai`` (``clip_vit_l14_openai``) for variant ``dreambooth_l14``.
The DreamBooth paper names CLIP without its size, and PhotoMaker released no evaluation code, so the size
is triptych's choice and part of the variant. The OpenAI file is a TorchScript archive: its state dict is
read with ``torch.jit.load`` and loaded strictly into ``open_clip.create_model(arch, pretrained=None,
force_quick_gelu=True)`` (OpenAI CLIP uses QuickGELU), in float32, as open_clip's own ``load_openai_model``
builds it.

Preprocessing is open_clip's evaluation transform for these models (``open_clip.image_transform(size,
is_train=False)``): PIL bicubic resize of the shorter side to 224, centre crop 224x224, RGB, ToTensor,
Normalize with the OpenAI mean (0.48145466, 0.4578275, 0.40821073) and std (0.26862954, 0.26130258,
0.27577711). Text: open_clip's tokenizer for the model (OpenAI BPE, 77 tokens, truncated). Embeddings are
``encode_image`` / ``encode_text`` outputs, L2-normalised; cosines are taken in float64.

Images are anything ``triptych.vision.face.load_image`` accepts (a path, uint8 HWC, float CHW in [0, 1]).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch
from PIL import Image

from triptych.errors import TriptychError
from triptych.vision.face import EmbeddingCache, ImageLike, load_image
from triptych.weights import per_file_cache

# weights-registry entry -> (open_clip model name, open_clip pretrained tag)
CLIP_MODELS: dict[str, tuple[str, str]] = {
    "clip_vit_b32_openai": ("ViT-B-32", "openai"),
    "clip_vit_l14_openai": ("ViT-L-14", "openai"),
}
_JIT_ONLY_KEYS = ("input_resolution", "context_length", "vocab_size")  # not parameters of open_clip's CLIP


class TextImageEncoder(Protocol):
    """What the text-image scores need of an encoder: unit embeddings of an image and of a prompt, and a key
    naming the encoder and its weights in an ``EmbeddingCache``."""

    @property
    def key(self) -> str: ...

    def embed_image(self, image: np.ndarray) -> np.ndarray: ...

    def embed_text(self, text: str) -> np.ndarray: ...


@dataclass(frozen=True)
class ClipEncoder:
    """An open_clip CLIP model with its evaluation transform and tokenizer, and the record of its weights
    (``{"name", "path", "sha256", ...}``, or the weights rule's state hash in tests)."""

    model: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    tokenizer: Callable[[Sequence[str]], torch.Tensor]
    arch: str
    pretrained: str
    weights: dict[str, Any]

    @property
    def key(self) -> str:
        """Names this encoder in an ``EmbeddingCache`` (architecture, tag and weights digest)."""
        return f"clip:{self.arch}:{self.pretrained}:{self.weights.get('sha256')}"

    @torch.no_grad()
    def embed_image(self, image: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) RGB -> unit float64 image embedding."""
        x = self.preprocess(Image.fromarray(image)).unsqueeze(0)
        return unit_embedding(self.model.encode_image(x, normalize=True)[0])

    @torch.no_grad()
    def embed_text(self, text: str) -> np.ndarray:
        """A prompt -> unit float64 text embedding."""
        return unit_embedding(self.model.encode_text(self.tokenizer([text]), normalize=True)[0])


def unit_embedding(vector: torch.Tensor) -> np.ndarray:
    out = vector.detach().cpu().double().numpy()
    norm = float(np.linalg.norm(out))
    if norm == 0.0 or not np.isfinite(norm):
        raise TriptychError("CLIP returned a zero or non-finite embedding", fix="check the weights and the input")
    return out / norm


def _depth(state: dict[str, torch.Tensor], prefix: str) -> int:
    return len({m.group(1) for k in state if (m := re.match(rf"{re.escape(prefix)}resblocks\.(\d+)\.", k))})


def clip_config_from_state(state: dict[str, torch.Tensor], *, vision_head_width: int = 64,
                           text_head_width: int = 64) -> dict[str, Any]:
    """open_clip's model config of a CLIP state dict of open_clip's (= OpenAI's) layout: widths, depths, MLP
    ratios, patch, input size, context and vocabulary read from its tensors, as open_clip's own reader of
    OpenAI files does (``build_model_from_openai_state_dict``); the head count is the width over the
    published model's head width (64 for OpenAI CLIP, 80 for the vision tower of ViT-H-14)."""
    try:
        conv, token = state["visual.conv1.weight"], state["token_embedding.weight"]
        width, text_width = conv.shape[0], token.shape[1]
        vision = {"layers": _depth(state, "visual.transformer."), "width": width, "head_width": vision_head_width,
                  "patch_size": conv.shape[-1],
                  "image_size": round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5) * conv.shape[-1],
                  "mlp_ratio": state["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0] / width}
        text = {"context_length": state["positional_embedding"].shape[0], "vocab_size": token.shape[0],
                "width": text_width, "heads": text_width // text_head_width, "layers": _depth(state, "transformer."),
                "mlp_ratio": state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0] / text_width}
        return {"embed_dim": state["text_projection"].shape[1], "vision_cfg": vision, "text_cfg": text}
    except KeyError as exc:
        raise TriptychError(f"not a CLIP state dict of open_clip's layout (no {exc.args[0]!r})",
                            fix="pass the state dict of an open_clip CLIP (visual.conv1.weight, "
                                "token_embedding.weight, ...)") from exc


def build_clip(arch: str, pretrained: str, weights: dict[str, Any],
               state_dict: dict[str, torch.Tensor] | None = None, *, quick_gelu: bool = True,
               transform: Callable[[int], Callable[[Image.Image], torch.Tensor]] | None = None,
               config: dict[str, Any] | None = None) -> ClipEncoder:
    """The encoder for ``arch`` (an open_clip model name). With ``state_dict`` it is loaded strictly; without,
    the model keeps open_clip's random initialisation (tests load the weights rule into it).

    ``quick_gelu`` forces QuickGELU (OpenAI CLIP; LAION models such as ViT-H-14 use GELU);
    ``transform(image_size)`` replaces open_clip's evaluation transform (HPSv2 resizes after ToTensor);
    ``config`` (``clip_config_from_state``) builds a CLIP of other widths or depths than ``arch``'s, with
    ``arch``'s tokenizer (a user's file, ``measure --weights``)."""
    import open_clip

    model = (open_clip.create_model(arch, pretrained=None, force_quick_gelu=quick_gelu) if config is None else
             open_clip.model.CLIP(**config, quick_gelu=quick_gelu))
    if state_dict is not None:
        model.load_state_dict({k: v for k, v in state_dict.items() if k not in _JIT_ONLY_KEYS}, strict=True)
    model = model.float().eval()
    size = model.visual.image_size
    preprocess = (transform(size[0] if isinstance(size, tuple) else size) if transform is not None else
                  open_clip.image_transform(size, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN,
                                            std=open_clip.OPENAI_DATASET_STD))
    return ClipEncoder(model, preprocess, open_clip.get_tokenizer(arch), arch, pretrained, weights)


def user_clip(arch: str, pretrained: str, trunk: Path, *, head_widths: tuple[int, int] = (64, 64),
              **options: Any) -> ClipEncoder:
    """The encoder of a user's CLIP file (``measure --weights``): a plain state dict of open_clip's layout,
    its architecture read from its tensors (``clip_config_from_state``; ``head_widths`` = vision, text),
    loaded strictly; ``options`` as for ``build_clip``. Its rows are labelled ``VARIANT+user-<sha8>``."""
    from triptych import weights

    state = {k: v for k, v in weights.load_state_dict(trunk).items() if k not in _JIT_ONLY_KEYS}
    config = clip_config_from_state(state, vision_head_width=head_widths[0], text_head_width=head_widths[1])
    try:
        return build_clip(arch, pretrained, weights.describe_user_file(trunk), state, config=config, **options)
    except RuntimeError as exc:
        raise TriptychError(f"{trunk}: does not load strictly into open_clip's CLIP ({str(exc)[:300]})",
                            fix=f"pass a state dict of {arch}'s layout") from exc


@per_file_cache(maxsize=2)
def clip_encoder(weights_name: str = "clip_vit_b32_openai", trunk: Path | None = None) -> ClipEncoder:
    """The registry's CLIP, loaded once per process: the file is found and sha256-checked by
    ``triptych.weights`` (a missing file raises its error naming the file, URL and import command);
    ``trunk`` a user's CLIP file in its place (``user_clip``)."""
    from triptych import weights

    if weights_name not in CLIP_MODELS:
        raise TriptychError(f"unknown CLIP weights {weights_name!r}", fix=f"use one of: {', '.join(CLIP_MODELS)}")
    arch, pretrained = CLIP_MODELS[weights_name]
    if trunk is not None:
        return user_clip(arch, pretrained, trunk)
    record = weights.describe(weights_name)
    try:
        archive = torch.jit.load(record["path"], map_location="cpu")
    except RuntimeError as exc:
        raise TriptychError(f"{record['path']}: not a TorchScript archive ({exc})",
                            fix=f"re-import the OpenAI file: triptych weights import {weights_name} PATH") from exc
    return build_clip(arch, pretrained, record, archive.state_dict())


def _image_embedding(image: ImageLike, encoder: TextImageEncoder, cache: EmbeddingCache | None,
                     name: str | None) -> np.ndarray:
    array, name = load_image(image, name)
    if cache is None:
        return encoder.embed_image(array)
    return cache.lookup(encoder.key, array, encoder.embed_image)


def clip_t(generated: ImageLike, prompt: str, *, model: str = "clip_vit_b32_openai",
           encoder: ClipEncoder | None = None, name: str | None = None,
           cache: EmbeddingCache | None = None, trunk: Path | None = None) -> float:
    """Metric ``clip_t``: cosine(CLIP text embedding of ``prompt``, CLIP image embedding of ``generated``).

    ``prompt`` is the full prompt with the class word in place. ``model`` is the weights entry (the
    variant's param); ``encoder`` overrides it (tests); ``trunk`` a user's CLIP file. Raw cosine in [-1, 1].
    """
    return text_image_cosine(generated, prompt, encoder or clip_encoder(model, trunk), name=name, cache=cache)


def text_image_cosine(generated: ImageLike, prompt: str, encoder: TextImageEncoder, *, name: str | None = None,
                      cache: EmbeddingCache | None = None, metric: str = "CLIP-T") -> float:
    """cosine(unit text embedding of ``prompt``, unit image embedding of ``generated``) in float64, for any
    encoder with ``embed_image`` / ``embed_text`` / ``key`` (CLIP-T, HPSv2, PickScore)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise TriptychError(f"{name or 'image'}: {metric} needs a non-empty prompt", fix="pass the prompt text")
    image = _image_embedding(generated, encoder, cache, name)
    return float(np.dot(image, encoder.embed_text(prompt)))


def clip_i(generated: ImageLike, references: Sequence[ImageLike], *, model: str = "clip_vit_b32_openai",
           encoder: ClipEncoder | None = None, name: str | None = None,
           reference_names: Sequence[str] | None = None, cache: EmbeddingCache | None = None,
           trunk: Path | None = None) -> float:
    """Metric ``clip_i``: mean over the references of cosine(CLIP(generated), CLIP(reference)) (``trunk``:
    a user's CLIP file, as for ``clip_t``).

    Same call as ``face_similarity`` (the ``identity_images`` measure kind and the portrait benchmarks call
    it so); reference embeddings are computed once per run when a ``cache`` is passed. Raw, in [-1, 1].
    """
    if len(references) == 0:
        raise TriptychError(f"{name or 'image'}: CLIP-I needs at least one reference image",
                            fix="pass the identity's reference photos")
    encoder = encoder or clip_encoder(model, trunk)
    cache = cache if cache is not None else EmbeddingCache()
    target = _image_embedding(generated, encoder, cache, name)
    names = list(reference_names) if reference_names is not None else [None] * len(references)
    return float(np.mean([np.dot(target, _image_embedding(r, encoder, cache, n)) for r, n in zip(references, names)]))
