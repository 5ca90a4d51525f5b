"""Preference scores HPSv2, PickScore (metrics/preference.py) and ImageReward (metrics/image_reward.py) on
same-architecture small models.

The published models are CLIP ViT-H/14 (~1B parameters, too large for the suite): the tests build the same
open_clip / transformers classes with ViT-H-14's patch size, input size, context and vocabulary but narrow
and shallow, fill them by the weights rule, and compare with values computed the peers' way:

- HPSv2: the hpsv2 1.2.0 wheel cannot be installed beside the pinned test stack (it pins pytest==7.2.0 and
  protobuf<4, and ships without its BPE file), so its ``score()`` formula and validation transform
  (``hpsv2/src/open_clip/transform.py``: ToTensor, then a bicubic resize of the *tensor*) are written out
  independently here with ``torch.nn.functional``;
- PickScore: its README scores with transformers' ``CLIPModel``; the expected value is ``CLIPModel``'s own
  ``forward(...).logits_per_image`` (= exp(logit_scale) * cos), fed by transformers' own CLIP tokenizer
  built from the OpenAI BPE tables;
- ImageReward: known answers computed by the image-reward 1.5 package's own ``ImageReward.score()`` and BLIP
  modules (in a separate environment: it needs transformers 4.x, timm 0.6.13 and fairscale) on a small BLIP
  filled by the weights rule, which the test rebuilds under the package's own key names.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from triptych.errors import TriptychError
from triptych.media import read_rgb
from triptych.metrics import preference
from triptych.registry import registry
from triptych.weights import UntrustedWeightsError, get_spec, import_file
from triptych.weights_rule import apply_weights_rule

from conftest import REPO

PORTRAITS = REPO / "datasets/samples/portraits"
NEWTON = sorted((PORTRAITS / "newton_man").iterdir())
TINY_HPS = "triptych-test-tiny-hps"  # open_clip's CLIP of ViT-H-14 (patch 14, 224, GELU), 2 layers, narrow
PROMPT = "a photo of a man wearing a spacesuit, on the moon"


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def _rule_record(model: torch.nn.Module, name: str) -> dict:
    return {"name": f"weights-rule:{name}", "path": None, "sha256": apply_weights_rule(model, 0, 1.0)}


def test_variants_resolve_and_name_registered_weights():
    reg = registry()
    for metric, variants in {"hpsv2": ("v2_0", "v2_1"), "pickscore": ("raw",), "image_reward": ("v1_0",)}.items():
        spec = reg.metric(metric)
        assert sorted(spec.variants) == sorted(variants) and spec.kind == "text_image"
        for v in spec.variants.values():
            assert callable(v.load()) and v.weights
            for name in v.weights:
                get_spec(name)


# --- HPSv2 --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hps_enc(tmp_path_factory):
    import open_clip

    torch.set_num_threads(1)
    config = tmp_path_factory.mktemp("hps") / f"{TINY_HPS}.json"
    vit_h = open_clip.get_model_config("ViT-H-14")
    config.write_text(json.dumps({
        "embed_dim": 32,
        "vision_cfg": {**vit_h["vision_cfg"], "layers": 2, "width": 160, "head_width": 80},
        "text_cfg": {**vit_h["text_cfg"], "layers": 2, "width": 64, "heads": 2}}))
    open_clip.add_model_config(config)
    enc = preference.build_hps({}, arch=TINY_HPS)
    return preference.build_hps(_rule_record(enc.model, "hps"), dict(enc.model.state_dict()), arch=TINY_HPS)


def _hpsv2_transform(image: Image.Image) -> torch.Tensor:
    """hpsv2's validation transform written out: [0, 1] tensor, bicubic antialiased resize of the shorter
    side to 224 (long side int(224 * long / short)), centre crop 224 (offset round((n - 224) / 2)), Normalize."""
    x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
    h, w = x.shape[1:]
    size = (224, int(224 * w / h)) if h <= w else (int(224 * h / w), 224)
    x = torch.nn.functional.interpolate(x[None], size=size, mode="bicubic", antialias=True, align_corners=False)[0]
    top, left = round((x.shape[1] - 224) / 2), round((x.shape[2] - 224) / 2)
    x = x[:, top:top + 224, left:left + 224]
    mean = torch.tensor(preference.OPENAI_MEAN)[:, None, None]
    std = torch.tensor(preference.OPENAI_STD)[:, None, None]
    return (x - mean) / std


def test_hps_transform_resizes_the_tensor_not_the_pil_image(hps_enc):
    import open_clip

    image = Image.open(NEWTON[0])
    ours = hps_enc.preprocess(image)
    assert ours.shape == (3, 224, 224)
    assert torch.allclose(ours, _hpsv2_transform(image), atol=1e-5)
    pil_path = open_clip.image_transform(224, is_train=False)(image)  # open_clip's own: PIL resize first
    assert (ours - pil_path).abs().max() > 1e-3  # the two transforms differ, so the choice is tested


def test_hpsv2_is_the_cosine_of_hpsv2_score(hps_enc):
    import open_clip

    model = hps_enc.model
    assert isinstance(model.visual.transformer.resblocks[0].mlp.gelu, torch.nn.GELU)  # GELU, not QuickGELU
    with torch.no_grad():
        image = model.encode_image(_hpsv2_transform(Image.open(NEWTON[1]))[None])
        text = model.encode_text(open_clip.tokenize([PROMPT]))
    image, text = image / image.norm(dim=-1, keepdim=True), text / text.norm(dim=-1, keepdim=True)
    expected = float(torch.diagonal(image @ text.T)[0])  # hpsv2 img_score.score(): the raw cosine
    assert preference.hpsv2(NEWTON[1], PROMPT, encoder=hps_enc) == pytest.approx(expected, abs=2e-6)
    assert preference.hpsv2(read_rgb(NEWTON[1]), PROMPT, encoder=hps_enc) == pytest.approx(expected, abs=2e-6)
    with pytest.raises(TriptychError, match="HPSv2 needs a non-empty prompt"):
        preference.hpsv2(NEWTON[1], " ", encoder=hps_enc)


def test_measure_kind_scores_each_image_with_its_prompt(hps_enc, tmp_path):
    import functools

    from triptych.measure import MeasureInputs, Measurement
    from triptych.measure_kinds import text_image

    prompts = tmp_path / "prompt.txt"
    prompts.write_text(PROMPT + "\n")
    spec = registry().metric("hpsv2")
    m = Measurement(spec, spec.variant("v2_1"), MeasureInputs(PORTRAITS / "newton_man", prompts))
    text_image.run(m, functools.partial(preference.hpsv2, encoder=hps_enc))
    assert dict(m.per_sample) == {p.stem: preference.hpsv2(p, PROMPT, encoder=hps_enc) for p in NEWTON}


def test_hps_checkpoint_loads_strictly(hps_enc):
    state = dict(hps_enc.model.state_dict())
    rebuilt = preference.build_hps({"sha256": "x"}, state, arch=TINY_HPS)
    assert preference.hpsv2(NEWTON[0], PROMPT, encoder=rebuilt) == preference.hpsv2(NEWTON[0], PROMPT, encoder=hps_enc)
    with pytest.raises(RuntimeError, match="Missing key"):
        preference.build_hps({}, {k: v for k, v in state.items() if k != "logit_scale"}, arch=TINY_HPS)


def test_a_file_that_is_not_an_hps_checkpoint_is_not_trusted(hps_enc, tmp_path, monkeypatch):
    """hps_v2_1 has no published sha256: a file is pinned only once it loads strictly into ViT-H-14."""
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    tiny = tmp_path / "HPS_v2.1_compressed.pt"
    torch.save({"state_dict": dict(hps_enc.model.state_dict())}, tiny)
    with pytest.raises(UntrustedWeightsError, match="does not load strictly into triptych.metrics.preference"):
        import_file("hps_v2_1", tiny)


# --- PickScore -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pick_enc():
    from transformers import CLIPConfig, CLIPModel

    torch.set_num_threads(1)
    config = CLIPConfig(
        text_config={"hidden_size": 64, "intermediate_size": 256, "num_attention_heads": 2, "num_hidden_layers": 2,
                     "max_position_embeddings": 77, "vocab_size": 49408, "hidden_act": "gelu",
                     "eos_token_id": 2},  # the legacy id of the laion / PickScore config.json: pools at argmax
        vision_config={"hidden_size": 160, "intermediate_size": 640, "num_attention_heads": 2,
                       "num_hidden_layers": 2, "patch_size": 14, "image_size": 224, "hidden_act": "gelu"},
        projection_dim=32)
    model = CLIPModel(config).eval()
    return preference.build_pickscore(model, _rule_record(model, "pickscore"))


@pytest.fixture(scope="module")
def hf_clip_tokenizer(tmp_path_factory):
    """transformers' CLIPTokenizer from the OpenAI BPE tables (the laion repository's vocab.json and
    merges.txt are these tables)."""
    import open_clip
    from transformers import CLIPTokenizer

    bpe = open_clip.tokenizer.SimpleTokenizer()
    folder = tmp_path_factory.mktemp("tok")
    names = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}  # OpenAI's spelling
    (folder / "vocab.json").write_text(json.dumps({names.get(k, k): v for k, v in bpe.encoder.items()}),
                                       encoding="utf-8")
    merges = sorted(bpe.bpe_ranks, key=bpe.bpe_ranks.get)
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n",
                                       encoding="utf-8")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))


def test_prompt_ids_equal_the_hugging_face_clip_tokenizer(pick_enc, hf_clip_tokenizer):
    for text in (PROMPT, "An OIL painting of Newton,  reading!", "a " * 100):
        expected = hf_clip_tokenizer(text, padding=True, truncation=True, max_length=77, return_tensors="pt")
        assert torch.equal(preference.prompt_ids(pick_enc.tokenizer, text), expected["input_ids"])


def test_pickscore_is_clipmodels_logit_per_image(pick_enc, hf_clip_tokenizer):
    from transformers import CLIPImageProcessorPil

    image = Image.open(NEWTON[2]).convert("RGB")
    pixels = CLIPImageProcessorPil()(images=image, return_tensors="pt")["pixel_values"]
    text = hf_clip_tokenizer(PROMPT, padding=True, truncation=True, max_length=77, return_tensors="pt")
    with torch.no_grad():
        expected = float(pick_enc.model(pixel_values=pixels, **text).logits_per_image[0, 0])
    assert preference.pickscore(NEWTON[2], PROMPT, encoder=pick_enc) == pytest.approx(expected, rel=1e-5)


# --- missing weights (the loaders' errors: test_personalization_metrics.py test_missing_weights_...) ----------


def test_measure_cli_refuses_pickscore_without_weights(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path))
    monkeypatch.setenv("TRIPTYCH_OFFLINE", "1")
    prompts = tmp_path / "prompt.txt"
    prompts.write_text(PROMPT + "\n")
    code, _, err = run_cli("measure", "pickscore", "--variant", "raw", "--pred", NEWTON[0], "--gt", prompts, "--json")
    assert code != 0 and "model.safetensors" in err and "triptych weights import pickscore_v1" in err


# --- ImageReward -----------------------------------------------------------------------------------------------

# A small BLIP of ImageReward's layout: ViT (patch 16, 224 px) of width 64, 2 blocks, 2 heads; BERT text encoder
# with cross-attention, width 32, 2 layers; a 25-word WordPiece vocabulary (+ [DEC], [ENC]).
IR_VISION = {"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 2,
             "image_size": 224, "patch_size": 16}
IR_MED = {"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
          "hidden_dropout_prob": 0.1, "hidden_size": 32, "initializer_range": 0.02, "intermediate_size": 64,
          "layer_norm_eps": 1e-12, "max_position_embeddings": 40, "model_type": "bert", "num_attention_heads": 2,
          "num_hidden_layers": 2, "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": 27, "encoder_width": 64,
          "add_cross_attention": True}
IR_VOCAB = ("[PAD] [UNK] [CLS] [SEP] [MASK] a an photo of man woman on the moon oil painting in style , ! . trend "
            "##ing dog portrait").split()
# ImageReward 1.5's own ImageReward.score() (its BLIP VisionTransformer and med.BertModel, transformers 4.36.2,
# timm 0.6.13, the model in eval() as ImageReward.load leaves it), on this small BLIP with the weights rule
# (seed 0, gain 1) over its own state-dict names (state hash ddab2dbf...; 101 keys, BLIP_Pretrain's
# vision_proj / text_proj and the text position_ids included); the tokenizer built by BLIP's init_tokenizer
# from IR_VOCAB.
IR_PEER = {("newton_0.jpg", "a photo of a man on the moon"): -0.1354476362466812,
           ("newton_0.jpg", "an oil painting of a woman, trending!"): -0.13246220350265503,
           ("newton_1.jpg", "a photo of a man on the moon"): -0.09950681030750275,
           ("newton_1.jpg", "an oil painting of a woman, trending!"): -0.09635046869516373,
           ("scarlett_0.jpg", "a photo of a man on the moon"): -0.18357312679290771,
           ("scarlett_0.jpg", "an oil painting of a woman, trending!"): -0.18363189697265625}


@pytest.fixture(scope="module")
def ir_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("image_reward")
    (folder / "med_config.json").write_text(json.dumps(IR_MED))
    (folder / "vocab.txt").write_text("\n".join(IR_VOCAB) + "\n")
    return folder


@pytest.fixture(scope="module")
def ir_checkpoint(ir_folder):
    """ImageReward.pt's layout (from the med_config beside it) filled by the weights rule under its own names."""
    from triptych.metrics import image_reward
    from triptych.weights_rule import rule_tensor

    torch.set_num_threads(1)
    net = image_reward.ImageRewardNet(image_reward.read_med_config(ir_folder / "med_config.json"), IR_VISION)
    layout = {k: v for k, v in image_reward.checkpoint_layout(str(ir_folder), IR_VISION).items()}
    state = {k: torch.from_numpy(rule_tensor(k, tuple(v.shape), 0, 1.0)) for k, v in layout.items()}
    state["blip.text_encoder.embeddings.position_ids"] = torch.arange(IR_MED["max_position_embeddings"])[None]
    net.load_state_dict(image_reward.model_state(state), strict=True)
    return net, state


def test_image_reward_equals_the_packages_own_score(ir_folder, ir_checkpoint):
    from triptych.metrics import image_reward

    scorer = image_reward.build_scorer(ir_checkpoint[0], ir_folder / "vocab.txt", {"sha256": "rule"})
    for (image, prompt), expected in IR_PEER.items():
        folder = PORTRAITS / ("newton_man" if image.startswith("newton") else "scarletthead_woman")
        assert image_reward.image_reward(folder / image, prompt, scorer=scorer) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(TriptychError, match="ImageReward needs a non-empty prompt"):
        image_reward.image_reward(NEWTON[0], "", scorer=scorer)


def test_image_reward_checkpoint_is_checked_before_it_is_trusted(ir_folder, ir_checkpoint, tmp_path, monkeypatch):
    """image_reward_v1 has no published sha256: the first import is pinned only if its keys and shapes are
    ImageReward's (ViT-L/16 and the med_config.json beside it)."""
    from triptych import weights
    from triptych.metrics import image_reward

    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    file = tmp_path / "ImageReward.pt"
    torch.save(ir_checkpoint[1], file)
    cache = weights.cache_path(get_spec("image_reward_v1")).parent
    with pytest.raises(UntrustedWeightsError, match="med_config.json"):
        import_file("image_reward_v1", file)  # nothing beside it to build the architecture from
    cache.mkdir(parents=True, exist_ok=True)  # the failed import left the folder
    (cache / "med_config.json").write_text(json.dumps(IR_MED))
    with pytest.raises(UntrustedWeightsError, match="does not load strictly into triptych.metrics.image_reward"):
        import_file("image_reward_v1", file)  # the small model is not ViT-L/16


def test_full_size_image_reward_layout_is_the_packages(tmp_path):
    """ViT-L/16 + BERT-base at full size, shapes only: image-reward 1.5's own BLIP_Pretrain(vit='large') with
    BLIP's med_config (bert-base-uncased, vocab 30524, cross-attention) and MLP(768) hold 625 tensors, these
    624 plus the text position_ids buffer that the weights check ignores (counted with the package's modules)."""
    from triptych.metrics import image_reward

    (tmp_path / "med_config.json").write_text(json.dumps({
        **IR_MED, "hidden_size": 768, "intermediate_size": 3072, "max_position_embeddings": 512,
        "num_attention_heads": 12, "num_hidden_layers": 12, "vocab_size": 30524, "encoder_width": 768}))
    with torch.device("meta"):
        layout = image_reward.checkpoint_layout(str(tmp_path))
    shapes = {k: tuple(v.shape) for k, v in layout.items()}
    assert len(shapes) == 624 and layout.ignored_state_keys == ("blip.text_encoder.embeddings.position_ids",)
    assert shapes["blip.visual_encoder.pos_embed"] == (1, 197, 1024)
    assert shapes["blip.visual_encoder.blocks.23.attn.qkv.weight"] == (3072, 1024)
    assert shapes["blip.text_encoder.encoder.layer.11.crossattention.self.key.weight"] == (768, 1024)
    assert shapes["blip.text_encoder.embeddings.word_embeddings.weight"] == (30524, 768)
    assert shapes["mlp.layers.0.weight"] == (1024, 768) and shapes["mlp.layers.7.weight"] == (1, 16)
    assert shapes["blip.vision_proj.weight"] == (256, 1024) and shapes["blip.text_proj.weight"] == (256, 768)


# --- user files (measure --weights): the peers' own computation on the user's network ------------------------


def test_hpsv2_with_a_user_file_is_hpsv2s_score_on_that_network(tmp_path, run_cli):
    """A user's HPSv2 file (an open_clip CLIP state dict; its widths and depths read from the tensors with
    ViT-H-14's head widths) scores as hpsv2's ``score()`` does on that network: the formula and transform
    written out above, on the same open_clip model filled by the weights rule."""
    import open_clip

    model = open_clip.model.CLIP(32, {"layers": 2, "width": 160, "head_width": 80, "patch_size": 14, "image_size": 224},
                                 {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 2},
                                 quick_gelu=False).eval()
    apply_weights_rule(model, 4, 1.0)
    torch.save(model.state_dict(), tmp_path / "my_hps.pt")
    (tmp_path / "prompt.txt").write_text(PROMPT + "\n")
    with torch.no_grad():
        image = model.encode_image(_hpsv2_transform(Image.open(NEWTON[1]))[None], normalize=True)
        text = model.encode_text(open_clip.tokenize([PROMPT]), normalize=True)
    expected = float((image @ text.T)[0, 0])
    code, out, err = run_cli("measure", "hpsv2", "--variant", "v2_1", "--pred", NEWTON[1], "--gt",
                             tmp_path / "prompt.txt", "--weights", tmp_path / "my_hps.pt", "--json")
    assert code == 0, err
    assert json.loads(out)["aggregate"]["value"] == pytest.approx(expected, abs=2e-6) and abs(expected) > 1e-3


def test_pickscore_with_a_user_file_is_clipmodels_logit_per_image(pick_enc, hf_clip_tokenizer, tmp_path, run_cli):
    """A user's PickScore file (a CLIPModel state dict with its config.json beside it) scores as the README's
    ``calc_probs`` does before its softmax: ``CLIPModel(...).logits_per_image`` on that network."""
    from safetensors.torch import save_file
    from transformers import CLIPImageProcessorPil

    pick_enc.model.config.to_json_file(str(tmp_path / "config.json"))
    save_file(pick_enc.model.state_dict(), str(tmp_path / "my_pick.safetensors"))
    (tmp_path / "prompt.txt").write_text(PROMPT + "\n")
    pixels = CLIPImageProcessorPil()(images=Image.open(NEWTON[2]).convert("RGB"), return_tensors="pt")["pixel_values"]
    text = hf_clip_tokenizer(PROMPT, padding=True, truncation=True, max_length=77, return_tensors="pt")
    with torch.no_grad():
        expected = float(pick_enc.model(pixel_values=pixels, **text).logits_per_image[0, 0])
    code, out, err = run_cli("measure", "pickscore", "--variant", "raw", "--pred", NEWTON[2], "--gt",
                             tmp_path / "prompt.txt", "--weights", tmp_path / "my_pick.safetensors", "--json")
    assert code == 0, err
    assert json.loads(out)["aggregate"]["value"] == pytest.approx(expected, rel=1e-5)
    (tmp_path / "alone").mkdir()  # the same file without its config.json beside it
    (tmp_path / "my_pick.safetensors").rename(tmp_path / "alone/my_pick.safetensors")
    code, _, err = run_cli("measure", "pickscore", "--variant", "raw", "--pred", NEWTON[2], "--gt",
                           tmp_path / "prompt.txt", "--weights", tmp_path / "alone/my_pick.safetensors")
    assert code != 0 and "needs the config.json of its CLIPModel beside it" in err
