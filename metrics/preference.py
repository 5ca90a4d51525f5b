"""Human-preference scores of a generated image against its prompt: HPSv2 and PickScore (docs/metrics.md).

Both are CLIP ViT-H/14 models fine-tuned on human choices between images of one prompt; both score one
image and one prompt through the cosine of their unit embeddings (``clip_score.text_image_cosine``, the
machinery of CLIP-T), with the published weights through the weights registry.

HPSv2 (Wu et al. 2023, tgxs002/HPSv2 @ 708ffb3 ``hpsv2/img_score.py score()``, packaged as ``hpsv2`` 1.2.0):
open_clip ``ViT-H-14`` (GELU, not QuickGELU) whose state dict is the ``state_dict`` entry of
``HPS_v2_compressed.pt`` (version "v2.0") or ``HPS_v2.1_compressed.pt`` ("v2.1"), loaded strictly, float32.
Preprocessing is the package's own validation transform (``hpsv2/src/open_clip/transform.py
image_transform(is_train=False)``), which differs from open_clip's: RGB, ``ToTensor`` first, then
torchvision ``Resize(224, bicubic)`` of the *tensor* (shorter side; torchvision >= 0.17 antialiases it, as
the pinned torchvision does), centre crop 224, Normalize with the OpenAI mean / std. Text: open_clip's
ViT-H-14 tokenizer (77 tokens). The score is ``image_features @ text_features.T`` of the L2-normalised
features: the raw cosine (the package returns e.g. 0.27; its leaderboard prints x100). ``score()`` runs
under CUDA autocast; triptych computes in float32 and takes the cosine in float64.

PickScore (Kirstain et al. 2023, the inference snippet ``calc_probs`` of the yuvalkirstain/PickScore README
@ 18443d6): transformers ``CLIPModel`` built from the ``config.json`` of ``yuvalkirstain/PickScore_v1``
beside its ``model.safetensors``; image features ``get_image_features`` and text features
``get_text_features``, each L2-normalised; score = ``logit_scale.exp() * cos`` (the raw score of one image,
variant ``raw``). The README's softmax over the candidate images of a prompt is not a variant: over one
method's images it sums to 1 per prompt, so its mean is 1/k for any images; it only ranks candidates of
different methods. Its processor is ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``'s: the image processor is
CLIP's defaults (PIL bicubic shorter side to 224, centre crop 224, /255, OpenAI mean / std), run here as
transformers' ``CLIPImageProcessorPil`` (the PIL path that ``AutoProcessor`` gave in PickScore's time); the
tokenizer is the OpenAI CLIP BPE, which open_clip's tokenizer applies with the same ids, so the prompt is
tokenised by open_clip and cut after its end token (what ``padding=True, truncation=True, max_length=77``
gives for one prompt).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from triptych.errors import TriptychError
from triptych.metrics.clip_score import ClipEncoder, build_clip, text_image_cosine, unit_embedding, user_clip
from triptych.vision.face import EmbeddingCache, ImageLike
from triptych.weights import per_file_cache

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
HPS_ARCH = "ViT-H-14"
HPS_WEIGHTS = ("hps_v2_0", "hps_v2_1")
HPS_HEAD_WIDTHS = (80, 64)  # ViT-H-14: vision width 1280 / 16 heads, text width 1024 / 16 heads
PICKSCORE_COMPANIONS = ("config.json",)
END_OF_TEXT = 49407  # <|endoftext|> of the OpenAI CLIP BPE (open_clip and the laion tokenizer alike)


def hps_transform(size: int) -> Callable[[Image.Image], torch.Tensor]:
    """hpsv2's validation transform: RGB, ToTensor, tensor bicubic resize of the shorter side (antialiased),
    centre crop, OpenAI Normalize."""
    from torchvision import transforms as T

    return T.Compose([lambda image: image.convert("RGB"), T.ToTensor(),
                      T.Resize(size, interpolation=T.InterpolationMode.BICUBIC, antialias=True),
                      T.CenterCrop(size), T.Normalize(OPENAI_MEAN, OPENAI_STD)])


def build_hps(weights: dict[str, Any], state_dict: dict[str, torch.Tensor] | None = None,
              arch: str = HPS_ARCH) -> ClipEncoder:
    """The HPSv2 encoder: open_clip ``arch`` with GELU and hpsv2's transform (``state_dict`` loaded strictly)."""
    return build_clip(arch, "hpsv2", weights, state_dict, quick_gelu=False, transform=hps_transform)


def hps_architecture(arch: str = HPS_ARCH) -> torch.nn.Module:
    """The network an HPSv2 checkpoint must load into strictly (the weights manager's check before a pin):
    shapes only, on the meta device (open_clip would otherwise move the built model to the CPU)."""
    import open_clip

    return open_clip.create_model(arch, pretrained=None, device="meta")


@per_file_cache(maxsize=1)
def hps_encoder(weights_name: str, trunk: Path | None = None) -> ClipEncoder:
    """The registry's HPSv2 checkpoint, loaded once per process (a missing file raises the weights error
    naming the file, its URL and ``triptych weights import``); ``trunk`` a user's file in its place, a plain
    state dict of open_clip's CLIP layout, its widths and depths read from its tensors (ViT-H-14's head
    widths), GELU and hpsv2's transform (``clip_score.user_clip``)."""
    from triptych import weights

    if weights_name not in HPS_WEIGHTS:
        raise TriptychError(f"unknown HPSv2 weights {weights_name!r}", fix=f"use one of: {', '.join(HPS_WEIGHTS)}")
    if trunk is not None:
        return user_clip(HPS_ARCH, "hpsv2", trunk, head_widths=HPS_HEAD_WIDTHS, quick_gelu=False,
                         transform=hps_transform)
    record = weights.describe(weights_name)
    return build_hps(record, weights.load(weights_name))


def hpsv2(generated: ImageLike, prompt: str, *, model: str = "hps_v2_1", encoder: ClipEncoder | None = None,
          name: str | None = None, cache: EmbeddingCache | None = None, trunk: Path | None = None) -> float:
    """Metric ``hpsv2``: cosine of the HPSv2 image and text embeddings, raw (hpsv2's ``score()``);
    ``trunk`` a user's HPSv2 file (``hps_encoder``)."""
    return text_image_cosine(generated, prompt, encoder or hps_encoder(model, trunk), name=name, cache=cache,
                             metric="HPSv2")


@dataclass(frozen=True)
class PickScoreEncoder:
    """A transformers CLIPModel with CLIP's PIL image processor and the OpenAI BPE tokenizer."""

    model: Any  # transformers.CLIPModel
    processor: Any  # transformers.CLIPImageProcessorPil
    tokenizer: Callable[[list[str]], torch.Tensor]
    weights: dict[str, Any]

    @property
    def key(self) -> str:
        return f"pickscore:{self.weights.get('sha256')}"

    @property
    def logit_scale(self) -> float:
        """exp(logit_scale), the temperature PickScore multiplies the cosine by."""
        return float(self.model.logit_scale.detach().double().exp())

    @torch.no_grad()
    def embed_image(self, image: np.ndarray) -> np.ndarray:
        pixels = self.processor(images=Image.fromarray(image), return_tensors="pt")["pixel_values"]
        return unit_embedding(self.model.get_image_features(pixel_values=pixels.float()).pooler_output[0])

    @torch.no_grad()
    def embed_text(self, text: str) -> np.ndarray:
        ids = prompt_ids(self.tokenizer, text)
        output = self.model.get_text_features(input_ids=ids, attention_mask=torch.ones_like(ids))
        return unit_embedding(output.pooler_output[0])


def prompt_ids(tokenizer: Callable[[list[str]], torch.Tensor], text: str) -> torch.Tensor:
    """open_clip's 77 token ids of ``text`` cut after the end token: (1, n) ids, as a Hugging Face CLIP
    tokenizer gives one prompt with ``padding=True, truncation=True, max_length=77``. CLIPModel pools the
    end token (the largest id, or the config's eos id), so the cut changes nothing but the attention span."""
    ids = tokenizer([text])[0]
    ends = (ids == END_OF_TEXT).nonzero()
    if len(ends) == 0:
        raise TriptychError(f"the tokenizer gave no end token {END_OF_TEXT} for {text!r}",
                            fix="use open_clip's OpenAI BPE tokenizer")
    return ids[: int(ends[0]) + 1].unsqueeze(0).long()


def build_pickscore(model: Any, weights: dict[str, Any]) -> PickScoreEncoder:
    """Wrap a transformers CLIPModel (float32, eval) with PickScore's processor and tokenizer."""
    import open_clip
    from transformers import CLIPImageProcessorPil

    return PickScoreEncoder(model.float().eval(), CLIPImageProcessorPil(), open_clip.get_tokenizer(HPS_ARCH), weights)


def user_pickscore(trunk: Path) -> PickScoreEncoder:
    """A user's PickScore file (``measure --weights``): a transformers ``CLIPModel`` state dict with the
    ``config.json`` of its CLIPModel beside it (as the registry's ``model.safetensors`` has), loaded strictly."""
    from transformers import CLIPConfig, CLIPModel

    from triptych import weights

    config = Path(trunk).parent / "config.json"
    if not config.is_file():
        raise TriptychError(f"{trunk}: a user's PickScore file needs the config.json of its CLIPModel beside it",
                            fix=f"save the model's config.json (model.config.to_json_file) into {config.parent}")
    model = CLIPModel(CLIPConfig.from_json_file(str(config)))
    try:
        model.load_state_dict(weights.load_state_dict(trunk), strict=True)
    except RuntimeError as exc:
        raise TriptychError(f"{trunk}: does not load strictly into the CLIPModel of {config} ({str(exc)[:300]})",
                            fix="pass the model's own state dict and config.json") from exc
    return build_pickscore(model, weights.describe_user_file(trunk))


@per_file_cache(maxsize=1)
def pickscore_encoder(weights_name: str = "pickscore_v1", trunk: Path | None = None) -> PickScoreEncoder:
    """The registry's PickScore checkpoint and the config.json beside it, loaded once per process; ``trunk``
    a user's file in its place (``user_pickscore``)."""
    from transformers import CLIPModel

    from triptych.vision.hf_folder import model_folder

    if trunk is not None:
        return user_pickscore(trunk)
    folder, record = model_folder(weights_name, PICKSCORE_COMPANIONS)
    return build_pickscore(CLIPModel.from_pretrained(str(folder), dtype=torch.float32), record)


def pickscore(generated: ImageLike, prompt: str, *, model: str = "pickscore_v1",
              encoder: PickScoreEncoder | None = None, name: str | None = None,
              cache: EmbeddingCache | None = None, trunk: Path | None = None) -> float:
    """Metric ``pickscore``: exp(logit_scale) * cos(image, text) of PickScore, one image at a time
    (``trunk``: a user's PickScore file)."""
    encoder = encoder or pickscore_encoder(model, trunk)
    return encoder.logit_scale * text_image_cosine(generated, prompt, encoder, name=name, cache=cache,
                                                   metric="PickScore")
