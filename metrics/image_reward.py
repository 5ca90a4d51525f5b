"""ImageReward (Xu et al. 2023): a BLIP reward model scoring a generated image against its prompt.

Facts from THUDM/ImageReward @ c0b9080 ``ImageReward/ImageReward.py`` (packaged as ``image-reward`` 1.5 on
PyPI):

- network: BLIP's ViT-L/16 image encoder (224 px, width 1024, 24 blocks, 16 heads, LayerNorm eps 1e-6,
  all tokens through the final norm) and BLIP's BERT text encoder with cross-attention to every image
  token (``med_config.json``; ``encoder_width`` = 1024), in its multimodal (bidirectional) mode; the
  ``[CLS]`` output (``last_hidden_state[:, 0]``) goes through ``MLP(768)``: Linear 768->1024, Dropout,
  1024->128, Dropout, 128->64, Dropout, 64->16, 16->1, no activations (``mlp.layers.{0,2,4,6,7}``);
- score: ``(reward - 0.16717362830052426) / 1.0333394966054072`` (the model's ``mean`` / ``std``);
- text: ``BertTokenizer`` of ``bert-base-uncased`` with ``[DEC]`` as bos and ``[ENC]`` added (BLIP's
  ``init_tokenizer``; neither appears in a prompt's ids), ``padding='max_length', truncation=True,
  max_length=35``, with its attention mask; ``score()`` keeps ``[CLS]`` first (it does not swap in ``[ENC]``);
- image: ``Resize(224, bicubic)`` of the PIL image, ``CenterCrop(224)``, RGB, ``ToTensor``, Normalize with
  the OpenAI CLIP mean / std.

The networks are transformers' ports of BLIP's own modules (``BlipVisionModel``, ``BlipTextModel``), which
hold the same parameters under other names; ``model_state`` renames ImageReward.pt's keys onto them.
``blip.vision_proj`` / ``blip.text_proj`` (BLIP's contrastive heads, unused by the score) and the
``position_ids`` buffer are dropped by name; every other key must load strictly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from PIL import Image

from triptych.errors import TriptychError
from triptych.vision.face import ImageLike, load_image
from triptych.weights import per_file_cache

REWARD_MEAN = 0.16717362830052426
REWARD_STD = 1.0333394966054072
MAX_TOKENS = 35
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
# BLIP create_vit('large', 224): VisionTransformer(patch_size=16, embed_dim=1024, depth=24, num_heads=16)
VIT_LARGE = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
             "image_size": 224, "patch_size": 16}
HEAD_WIDTHS = (1024, 128, 64, 16, 1)
VOCAB_SOURCE = "https://huggingface.co/google-bert/bert-base-uncased/resolve/main/vocab.txt"
UNUSED_PREFIXES = ("blip.vision_proj.", "blip.text_proj.")
UNUSED_KEYS = ("blip.text_encoder.embeddings.position_ids",)

# ImageReward.pt key (BLIP's VisionTransformer) -> transformers BlipVisionModel key
_VISION_RENAMES = (
    (r"cls_token$", "embeddings.class_embedding"),
    (r"pos_embed$", "embeddings.position_embedding"),
    (r"patch_embed\.proj\.", "embeddings.patch_embedding."),
    (r"blocks\.(\d+)\.norm1\.", r"encoder.layers.\1.layer_norm1."),
    (r"blocks\.(\d+)\.norm2\.", r"encoder.layers.\1.layer_norm2."),
    (r"blocks\.(\d+)\.attn\.qkv\.", r"encoder.layers.\1.self_attn.qkv."),
    (r"blocks\.(\d+)\.attn\.proj\.", r"encoder.layers.\1.self_attn.projection."),
    (r"blocks\.(\d+)\.mlp\.", r"encoder.layers.\1.mlp."),
    (r"^norm\.", "post_layernorm."),
)


class RewardHead(torch.nn.Module):
    """ImageReward's MLP: five Linear layers, Dropout between the first four, no activation."""

    def __init__(self, width: int) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        for i, (a, b) in enumerate(zip((width, *HEAD_WIDTHS[:-1]), HEAD_WIDTHS)):
            layers.append(torch.nn.Linear(a, b))
            if i < 3:
                layers.append(torch.nn.Dropout(0.0))  # 0.2 / 0.2 / 0.1 in training; identity in eval
        self.layers = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ImageRewardNet(torch.nn.Module):
    """BLIP image encoder + cross-attending text encoder + reward head, raw reward of (image, prompt ids)."""

    def __init__(self, med_config: Mapping[str, Any], vision: Mapping[str, Any] = VIT_LARGE) -> None:
        from transformers import BlipTextConfig, BlipVisionConfig
        from transformers.models.blip.modeling_blip import BlipVisionModel
        from transformers.models.blip.modeling_blip_text import BlipTextModel

        super().__init__()
        self.vision = BlipVisionModel(BlipVisionConfig(**vision, layer_norm_eps=1e-6, hidden_act="gelu"))
        text = {k: med_config[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                           "num_attention_heads", "max_position_embeddings", "layer_norm_eps",
                                           "hidden_act", "pad_token_id") if k in med_config}
        # is_decoder=True is what makes transformers build the cross-attention of every layer; the forward
        # pass runs with is_decoder=False (bidirectional self-attention), BLIP's 'multimodal' mode
        self.text = BlipTextModel(BlipTextConfig(**text, encoder_hidden_size=vision["hidden_size"], is_decoder=True,
                                                 hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
                                  add_pooling_layer=False)
        self.mlp = RewardHead(int(med_config["hidden_size"]))

    def forward(self, pixels: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        image = self.vision(pixel_values=pixels).last_hidden_state
        image_mask = torch.ones(image.shape[:-1], dtype=torch.long)
        text = self.text(input_ids=ids, attention_mask=mask, encoder_hidden_states=image,
                         encoder_attention_mask=image_mask, is_decoder=False).last_hidden_state
        return self.mlp(text[:, 0, :].float())[:, 0]


def model_key(key: str) -> str | None:
    """The ``ImageRewardNet`` name of an ImageReward.pt key (None: a key the score does not use)."""
    if key in UNUSED_KEYS or key.startswith(UNUSED_PREFIXES):
        return None
    if key.startswith("blip.visual_encoder."):
        name = key.removeprefix("blip.visual_encoder.")
        for pattern, target in _VISION_RENAMES:
            name = re.sub(pattern, target, name)
        return "vision." + name
    if key.startswith("blip.text_encoder."):
        return "text." + key.removeprefix("blip.text_encoder.")
    return key


def model_state(checkpoint: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ImageReward.pt's state dict renamed onto ``ImageRewardNet`` (unused heads and buffers dropped)."""
    return {name: value for key, value in checkpoint.items() if (name := model_key(key)) is not None}


def read_med_config(path: Path) -> dict[str, Any]:
    """BLIP's ``med_config.json`` (a BERT config with ``encoder_width`` and ``add_cross_attention``)."""
    fix = f"download med_config.json from huggingface.co/THUDM/ImageReward into {path.parent}"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TriptychError(f"{path}: not a readable med_config.json ({exc})", fix=fix) from exc
    if not config.get("add_cross_attention"):
        raise TriptychError(f"{path}: not BLIP's med_config (add_cross_attention is not true)", fix=fix)
    return config


class CheckpointLayout(dict):
    """Keys -> tensors of shape only; ``ignored_state_keys`` names the keys the weights check leaves out."""

    ignored_state_keys = UNUSED_KEYS


def checkpoint_layout(folder: str, vision: Mapping[str, Any] = VIT_LARGE) -> CheckpointLayout:
    """The keys and shapes ImageReward.pt must have (the weights manager's check before a pin): the network
    built from the ``med_config.json`` in ``folder`` under ImageReward's names, plus BLIP's contrastive
    projections (``embed_dim`` 256) that the checkpoint carries and the score leaves unused."""
    net = ImageRewardNet(read_med_config(Path(folder) / "med_config.json"), vision)
    ours = net.state_dict()
    layout = CheckpointLayout({key: ours[model_key(key)] for key in _checkpoint_names(net)})
    layout.update({"blip.vision_proj.weight": torch.empty(256, net.vision.config.hidden_size),
                   "blip.vision_proj.bias": torch.empty(256),
                   "blip.text_proj.weight": torch.empty(256, net.text.config.hidden_size),
                   "blip.text_proj.bias": torch.empty(256)})
    return layout


def _checkpoint_names(net: ImageRewardNet) -> list[str]:
    """ImageReward's names for ``net``'s parameters, from BLIP's module layout."""
    names = ["blip.visual_encoder.cls_token", "blip.visual_encoder.pos_embed",
             "blip.visual_encoder.patch_embed.proj.weight", "blip.visual_encoder.patch_embed.proj.bias"]
    for i in range(net.vision.config.num_hidden_layers):
        for part in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
            names += [f"blip.visual_encoder.blocks.{i}.{part}.weight", f"blip.visual_encoder.blocks.{i}.{part}.bias"]
    names += ["blip.visual_encoder.norm.weight", "blip.visual_encoder.norm.bias"]
    names += ["blip.text_encoder." + k for k in net.text.state_dict()]
    names += ["mlp." + k for k in net.mlp.state_dict()]
    return names


def reward_transform() -> Callable[[Image.Image], torch.Tensor]:
    """ImageReward's ``_transform(224)``: PIL bicubic resize of the shorter side, centre crop, RGB, OpenAI Normalize."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(224, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224),
                      lambda image: image.convert("RGB"), T.ToTensor(), T.Normalize(MEAN, STD)])


def blip_tokenizer(vocab: Path) -> Any:
    """BLIP's ``init_tokenizer`` from a local ``bert-base-uncased`` vocab.txt: [DEC] bos, [ENC] added."""
    from transformers import BertTokenizer

    tokenizer = BertTokenizer(str(vocab))
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tokenizer


@dataclass(frozen=True)
class ImageRewardScorer:
    """A loaded ImageReward: the network (eval, float32), its tokenizer and transform, its weights record."""

    net: ImageRewardNet
    tokenizer: Any
    preprocess: Callable[[Image.Image], torch.Tensor]
    weights: dict[str, Any]

    @torch.no_grad()
    def score(self, image: np.ndarray, prompt: str) -> float:
        text = self.tokenizer(prompt, padding="max_length", truncation=True, max_length=MAX_TOKENS,
                              return_tensors="pt")
        pixels = self.preprocess(Image.fromarray(image)).unsqueeze(0)
        reward = float(self.net(pixels, text["input_ids"], text["attention_mask"])[0])
        return (reward - REWARD_MEAN) / REWARD_STD


def build_scorer(net: ImageRewardNet, vocab: Path, weights: dict[str, Any]) -> ImageRewardScorer:
    return ImageRewardScorer(net.float().eval(), blip_tokenizer(vocab), reward_transform(), weights)


def vision_config_from_checkpoint(checkpoint: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The BLIP ViT of an ImageReward.pt state dict: width, depth, MLP width, patch and input size read from
    its tensors, ViT-L/16's head width 64 (1024 / 16): ``VIT_LARGE`` for the published file."""
    prefix = "blip.visual_encoder."
    try:
        width = checkpoint[prefix + "cls_token"].shape[-1]
        patch = checkpoint[prefix + "patch_embed.proj.weight"].shape[-1]
        grid = round((checkpoint[prefix + "pos_embed"].shape[1] - 1) ** 0.5)
        depth = len({k.split(".")[3] for k in checkpoint if k.startswith(prefix + "blocks.")})
        return {"hidden_size": width, "intermediate_size": checkpoint[prefix + "blocks.0.mlp.fc1.weight"].shape[0],
                "num_hidden_layers": depth, "num_attention_heads": width // 64, "image_size": grid * patch,
                "patch_size": patch}
    except KeyError as exc:
        raise TriptychError(f"not an ImageReward state dict (no {exc.args[0]!r})",
                            fix="pass a state dict of ImageReward.pt's layout (blip.visual_encoder.*, "
                                "blip.text_encoder.*, mlp.*)") from exc


def load_scorer(checkpoint: Mapping[str, torch.Tensor], folder: Path, record: dict[str, Any],
                vision: Mapping[str, Any] = VIT_LARGE) -> ImageRewardScorer:
    """An ImageReward checkpoint loaded strictly into the network of the ``med_config.json`` in ``folder``,
    with bert-base-uncased's ``vocab.txt`` there."""
    if not (folder / "vocab.txt").is_file():
        raise TriptychError(f"{folder}: ImageReward needs bert-base-uncased's vocab.txt beside its weights",
                            fix=f"download {VOCAB_SOURCE} into {folder}")
    net = ImageRewardNet(read_med_config(folder / "med_config.json"), vision)
    net.load_state_dict(model_state(checkpoint), strict=True)
    return build_scorer(net, folder / "vocab.txt", record)


@per_file_cache(maxsize=1)
def image_reward_scorer(weights_name: str = "image_reward_v1", trunk: Path | None = None) -> ImageRewardScorer:
    """The registry's ImageReward.pt with med_config.json and bert-base-uncased's vocab.txt beside it;
    ``trunk`` a user's file in its place (``measure --weights``): a state dict of ImageReward.pt's layout with
    its own med_config.json and vocab.txt beside it, its ViT read from its tensors
    (``vision_config_from_checkpoint``), loaded strictly."""
    from triptych import weights
    from triptych.vision.hf_folder import model_folder

    if trunk is not None:
        checkpoint = weights.load_state_dict(trunk)
        folder = Path(trunk).parent
        if not (folder / "med_config.json").is_file():
            raise TriptychError(f"{trunk}: a user's ImageReward file needs its med_config.json beside it",
                                fix=f"copy the BLIP med_config.json the model was built from into {folder}")
        try:
            return load_scorer(checkpoint, folder, weights.describe_user_file(trunk),
                               vision_config_from_checkpoint(checkpoint))
        except RuntimeError as exc:
            raise TriptychError(f"{trunk}: does not load strictly into ImageReward's network ({str(exc)[:300]})",
                                fix="pass a state dict of ImageReward.pt's layout and its med_config.json") from exc
    folder, record = model_folder(weights_name, ("med_config.json",))
    return load_scorer(weights.load(weights_name), folder, record)


def image_reward(generated: ImageLike, prompt: str, *, model: str = "image_reward_v1",
                 scorer: ImageRewardScorer | None = None, name: str | None = None,
                 trunk: Path | None = None) -> float:
    """Metric ``image_reward``: ImageReward's normalised reward of ``generated`` for ``prompt`` (``trunk``:
    a user's ImageReward file)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise TriptychError(f"{name or 'image'}: ImageReward needs a non-empty prompt", fix="pass the prompt text")
    array, _ = load_image(generated, name)
    return (scorer or image_reward_scorer(model, trunk)).score(array, prompt)
