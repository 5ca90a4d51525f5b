"""PhotoMaker generation (baselines/photomaker_pipeline.py) end to end on a tiny SDXL-shaped model.

The model is built from configs (no downloads): a two-level text_time UNet, two 2-layer CLIP text encoders
(32 + 32 = 64 = the UNet's cross-attention width), a two-level VAE, the real CLIP BPE tokenizers (built from
open_clip's vocabulary file) and tiny v1 and v2 ID encoders of the released structure, all filled by the weights
rule; v2's face embeddings come from SCRFD- and ArcFace-interface ONNX files (tests/face_onnx.py) read by
insightface, as antelopev2's are. Checks: tokenizer ids against open_clip's reference tokenizer, the trigger /
class-token mask against the encoder fixture, the merge step seen by the UNet, LoRA fusion by hand and against
diffusers' own loading and fusing (the released files' key layout and the one diffusers writes), seeds, the
protocol slices of v1 and v2 written by the job (layout, seeds, timing rows, resume without recomputation) and
scored, and the missing-weights error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("diffusers")
pytest.importorskip("open_clip")

from triptych.benchmarks.generation_job import SUMMARY_FILE, TABLE_FILE, run_job  # noqa: E402
from triptych.baselines.photomaker_pipeline import (  # noqa: E402
    GenerationSettings,
    PhotoMakerGenerator,
    ddim_scheduler,
    fuse_lora,
    insert_trigger,
    load_photomaker,
    sdxl_tokenizers,
)
from triptych.benchmarks.celeb_protocol import CLI_OPTIONS, id_slug, load_protocol, make_plan  # noqa: E402
from triptych.baselines.photomaker_encoder import id_pixel_values  # noqa: E402
from triptych.errors import InputError, TriptychError  # noqa: E402
from triptych.vision.face import NoFaceError  # noqa: E402
from triptych.results import read_run, read_samples  # noqa: E402
from triptych.scoring import score  # noqa: E402
from triptych.weights import MissingWeightsError, get_spec  # noqa: E402
from triptych.weights_rule import apply_weights_rule  # noqa: E402

from conftest import REPO

PORTRAITS = REPO / "datasets/samples/portraits"
SEED = 1300  # weights-rule seeds of the tiny components: SEED + component index
TINY = GenerationSettings(steps=4, height=64, width=64, style_strength_ratio=50)  # start_merge_step 2


def _tiny_components(version: str = "v1"):
    from diffusers import AutoencoderKL, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from triptych.baselines.photomaker_encoder import PhotoMakerIDEncoderV1, PhotoMakerIDEncoderV2

    unet = UNet2DConditionModel(
        sample_size=32, block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), cross_attention_dim=64, transformer_layers_per_block=1, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 32)
    vae = AutoencoderKL(block_out_channels=[16, 32], down_block_types=["DownEncoderBlock2D"] * 2,
                        up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4, norm_num_groups=8, sample_size=64)
    common = dict(bos_token_id=0, eos_token_id=2, pad_token_id=1, vocab_size=49408, hidden_size=32,
                  intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, projection_dim=32)
    text_encoder = CLIPTextModel(CLIPTextConfig(**common, hidden_act="quick_gelu"))
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**common, hidden_act="gelu"))
    encoder_class = PhotoMakerIDEncoderV1 if version == "v1" else PhotoMakerIDEncoderV2
    encoder = encoder_class(embed_dim=64, vision_config=dict(
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, patch_size=32,
        projection_dim=24))
    for i, module in enumerate((unet, vae, text_encoder, text_encoder_2, encoder)):
        apply_weights_rule(module, SEED + i, 1.0)
    tokenizer, tokenizer_2 = sdxl_tokenizers()
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet,
                                     scheduler=ddim_scheduler(), add_watermarker=False)
    return pipe, encoder


@pytest.fixture(scope="module")
def generator() -> PhotoMakerGenerator:
    pipe, encoder = _tiny_components()
    return PhotoMakerGenerator(pipe, encoder, "v1", TINY, device="cpu")


def _photos(n: int) -> list[torch.Tensor]:
    return [torch.rand(3, 40 + 8 * i, 32, generator=torch.Generator().manual_seed(i)) for i in range(n)]


def test_tokenizers_match_open_clip():
    from open_clip.tokenizer import SimpleTokenizer

    reference = SimpleTokenizer()
    tokenizer, tokenizer_2 = sdxl_tokenizers()
    protocol = load_protocol()
    prompts = [protocol.fill(p, "woman") for p in protocol.prompts] + ["Héllo, 12 photos!! of Van Gogh's man"]
    for prompt in prompts:
        expected = [reference.sot_token_id] + reference.encode(prompt) + [reference.eot_token_id]
        assert tokenizer.encode(prompt) == expected, prompt
        if "!" not in prompt:  # tokenizer_2's pad token '!' is special, so it splits '!!' (as SDXL's does)
            assert tokenizer_2.encode(prompt) == expected, prompt
    assert len(tokenizer) == len(reference.encoder)
    assert tokenizer.pad_token_id == reference.eot_token_id and tokenizer_2.pad_token_id == reference.encoder["!"]


def test_insert_trigger():
    assert insert_trigger("a man wearing a Superman outfit") == "a man img wearing a Superman outfit"
    assert insert_trigger("A Woman, smiling") == "A Woman img, smiling"
    assert insert_trigger("a photo of a man img") == "a photo of a man img"
    assert insert_trigger("a manly woman") == "a manly woman img"  # whole words only
    with pytest.raises(InputError):
        insert_trigger("a cat in the snow")


def test_trigger_mask_and_text_only_prompt(generator, fixtures_dir):
    """The fixture's prompt and 2 ID images: class token 'man' at index 5 repeated twice -> mask [5, 6]."""
    embeds, pooled, mask = generator._encode_trigger_prompt("a photo of a man img", 2)
    expected = np.load(fixtures_dir / "model_ports/photomaker/class_tokens_mask_v1.npy")
    assert np.array_equal(mask.cpu().numpy(), expected)
    assert generator.trigger_id == len(generator.pipe.tokenizer) - 1 == 49408  # the first free id
    assert embeds.shape == (1, 77, 64) and pooled.shape == (1, 32)
    assert generator.text_only_prompt("a photo of a man img") == "a photo of a man"
    with pytest.raises(TriptychError, match="2 times"):
        generator._encode_trigger_prompt("a man img and a woman img", 1)


def test_merge_step_and_settings(generator):
    assert GenerationSettings().start_merge_step == 10  # int(20 / 100 * 50)
    assert GenerationSettings(style_strength_ratio=100).start_merge_step == 30  # the demos' cap
    assert TINY.start_merge_step == 2
    seen: list[torch.Tensor] = []
    hook = generator.pipe.unet.register_forward_hook(
        lambda module, args, kwargs, output: seen.append(kwargs["encoder_hidden_states"].clone()), with_kwargs=True)
    try:
        photos = _photos(2)
        generator.generate(photos, "a man wearing a hat", 3)
    finally:
        hook.remove()
    cond = generator.encode(photos, "a man wearing a hat")
    text_only = torch.cat([cond.negative, cond.text_only])
    fused = torch.cat([cond.negative, cond.fused])
    assert not torch.equal(text_only, fused)
    assert [torch.equal(s, text_only) for s in seen] == [True, True, True, False]  # steps 0..2 text only
    assert torch.equal(seen[3], fused)
    assert cond.prompt_text_only == "a man wearing a hat"


def test_seeds_reproduce(generator):
    photos = _photos(2)
    a, b, c = (generator.generate(photos, "a man in the snow", s)[0] for s in (11, 11, 12))
    assert a.shape == (3, 64, 64) and torch.equal(a, b) and not torch.equal(a, c)
    assert 0 <= float(a.min()) and float(a.max()) <= 1


def test_fuse_lora_by_hand():
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel(sample_size=8, block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16)
    q = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q"
    out = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0"
    modules = dict(unet.named_modules())
    before_q, before_out = modules[q].weight.detach().clone(), modules[out].weight.detach().clone()
    g = torch.Generator().manual_seed(0)
    down, up = torch.randn(4, 64, generator=g), torch.randn(64, 4, generator=g)
    state = {f"unet.{q.rsplit('.', 1)[0]}.processor.to_q_lora.down.weight": down,
             f"unet.{q.rsplit('.', 1)[0]}.processor.to_q_lora.up.weight": up,
             f"{out}.lora_A.weight": down, f"{out}.lora_B.weight": up, f"{out}.alpha": torch.tensor(2.0)}
    assert fuse_lora(unet, state) == 2
    assert torch.allclose(modules[q].weight, before_q + up @ down, atol=1e-5)
    assert torch.allclose(modules[out].weight, before_out + 0.5 * (up @ down), atol=1e-5)  # alpha 2 / rank 4
    with pytest.raises(TriptychError, match="no known LoRA style"):
        fuse_lora(unet, {"unet.something.weird": down})
    with pytest.raises(TriptychError, match="no Linear"):
        fuse_lora(unet, {"unet.nowhere.lora.down.weight": down, "unet.nowhere.lora.up.weight": up})


# the released photomaker-v1.bin / -v2.bin 'lora_weights' layout: diffusers' attention-processor LoRA keys
# (shiimizu/ComfyUI-PhotoMaker-Plus#19 lists the file's keys), no alpha (scale 1)
RELEASED_LORA_KEY = re.compile(r"^unet\.(down|mid|up)_blocks?\..*\.attn[12]\.processor\.to_(q|k|v|out)_lora\.(down|up)\.weight$")


def test_fuse_lora_equals_diffusers_loading_on_the_released_and_the_saved_layouts(tmp_path):
    """A rank-4 LoRA made with peft on the tiny UNet and written by diffusers' own ``save_lora_weights`` (keys
    ``unet.<module>.lora.{down,up}.weight``), and the same tensors under the released files' processor keys: for
    both, ``fuse_lora`` gives the UNet weights that diffusers' ``load_lora_weights`` + ``fuse_lora`` give."""
    pytest.importorskip("peft")
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file

    pipe, _ = _tiny_components()
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                     target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, parameter in pipe.unet.named_parameters():
            if "lora_B" in name:  # peft starts B at zero; a LoRA that changes nothing would prove nothing
                parameter.copy_(torch.randn(parameter.shape, generator=g) * 0.1)
    StableDiffusionXLPipeline.save_lora_weights(
        tmp_path, unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet)))
    saved = load_file(tmp_path / "pytorch_lora_weights.safetensors")
    assert len(saved) == 64 and all(re.match(r"^unet\..*\.(to_[qkv]|to_out\.0)\.lora\.(down|up)\.weight$", k)
                                    for k in saved)
    released = {re.sub(r"\.(to_[qkv]|to_out)(?:\.0)?\.lora\.(down|up)\.weight$", r".processor.\1_lora.\2.weight", k): v
                for k, v in saved.items()}
    assert all(RELEASED_LORA_KEY.match(k) for k in released)
    base = _tiny_components()[0].unet.state_dict()
    for layout in (saved, released):
        reference = _tiny_components()[0]
        reference.load_lora_weights(dict(layout), adapter_name="photomaker")
        reference.fuse_lora()
        reference.unload_lora_weights()
        expected = reference.unet.state_dict()
        ours = _tiny_components()[0].unet
        assert fuse_lora(ours, layout) == 32
        changed = [k for k in base if not torch.equal(base[k], expected[k])]
        assert len(changed) == 32 and all(k.endswith("weight") for k in changed)
        for key, value in ours.state_dict().items():
            assert torch.allclose(value, expected[key], atol=1e-6), key


def test_missing_weights_name_each_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingWeightsError) as info:
        load_photomaker("v1", device="cpu")
    message = info.value.message
    for name in ("sdxl_base_1_0", "photomaker_v1"):
        spec = get_spec(name)
        assert spec.filename in message and spec.urls[0] in message
        assert f"triptych weights import {name} PATH" in message
    with pytest.raises(MissingWeightsError) as info:
        load_photomaker("v2", device="cpu")
    for name in ("sdxl_base_1_0", "photomaker_v2", "antelopev2_scrfd_10g", "antelopev2_glintr100"):
        assert f"triptych weights import {name} PATH" in info.value.message
    assert "antelopev2.zip" in info.value.message


def test_tiny_protocol_slice_and_resume(generator, tmp_path, capsys):
    protocol = load_protocol()
    ids = protocol.ids[:2]
    photos = [(photo * 255).round().to(torch.uint8).permute(1, 2, 0).numpy() for photo in _photos(2)]
    plan = _slice_plan(tmp_path / "refs", protocol, {name: photos for name in ids})
    requests = plan.images()
    out = tmp_path / "out"
    cpu = time.process_time()
    result = run_job(generator, requests, out, method="photomaker-v1", method_version="1", protocol=protocol,
                     seeds=plan.seeds(), describe=generator.describe(), progress=False)
    cpu_per_image = (time.process_time() - cpu) / len(requests)
    assert (result.generated, result.skipped) == (8, 0)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == sorted(r.path for r in requests)
    assert all(Image.open(out / r.path).size == (64, 64) for r in requests)
    table = read_samples(out / TABLE_FILE)
    assert sorted(table["sample_id"]) == sorted(r.sample_id for r in requests)
    assert (table["value"] > 0).all() and set(table["unit"]) == {"s"}
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert {i["path"]: i["seed"] for i in summary["images"]} == {r.path: r.seed for r in requests}
    assert summary["generator"]["start_merge_step"] == 2 and summary["generator"]["settings"]["steps"] == 4

    mtimes = {r.path: os.stat(out / r.path).st_mtime_ns for r in requests}
    again = run_job(generator, requests, out, method="photomaker-v1", method_version="1", protocol=protocol,
                    seeds=plan.seeds(), describe=generator.describe(), progress=False)
    assert (again.generated, again.skipped) == (0, 8)
    assert {r.path: os.stat(out / r.path).st_mtime_ns for r in requests} == mtimes
    with capsys.disabled():
        print(f"\ntiny PhotoMaker (64x64, 4 DDIM steps, CPU): {cpu_per_image:.3f} s CPU time per image, "
              f"{np.mean(result.seconds):.3f} s wall per image")

    _score_slice(tmp_path, out, ids, len(requests))


def _slice_plan(refs: Path, protocol, photos: dict[str, list[np.ndarray]]):
    """The 2-ID, 2-prompt, 2-images-per-prompt plan over reference folders holding ``photos`` per ID."""
    for name, arrays in photos.items():
        folder = refs / f"{id_slug(name)}_{protocol.class_words[name]}"
        folder.mkdir(parents=True)
        for i, array in enumerate(arrays):
            Image.fromarray(array).save(folder / f"{i}.png")
    return make_plan({"refs": refs, "ids": "2", "prompts": "2", "images_per_prompt": 2, "seed": 0},
                     protocol, CLI_OPTIONS)[0]


def _score_slice(tmp_path: Path, out: Path, ids: list[str], count: int) -> None:
    """The slice is what the personalization benchmark scores (real portraits as the IDs' references, dlib)."""
    protocol = load_protocol()
    score_refs = tmp_path / "score_refs"
    for name, source in zip(ids, ("newton_man", "scarletthead_woman")):
        shutil.copytree(PORTRAITS / source, score_refs / f"{id_slug(name)}_{protocol.class_words[name]}")
    run = read_run(score("celeb-25id-40prompt", tmp_path / "results", pred_dir=out, metrics=["face_sim:dlib"],
                         params={"refs": str(score_refs), "ids": "2", "prompts": "2", "images_per_prompt": "2"}))
    (metric,) = run["metrics"]
    assert run["status"] == "complete" and metric["aggregate"]["n"] == count
    faceless = metric.get("flagged", {}).get("no_face", {"count": 0})["count"]
    assert 0 <= faceless <= count  # a random tiny SDXL mostly draws no face: flagged, scored 0


def _portrait_photos(source: str, n: int = 2, size: int = 96) -> list[np.ndarray]:
    """The first ``n`` sample portraits of ``source``, shrunk to ``size`` pixels square (uint8 RGB)."""
    paths = sorted((PORTRAITS / source).iterdir())[:n]
    return [np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR)) for p in paths]


def test_tiny_v2_slice_generates_with_antelopev2_embeddings_and_scores(tmp_path):
    """v2 end to end: each reference photo's raw ArcFace embedding (SCRFD detection, alignment, ArcFaceONNX, all
    insightface's code on exported files) enters the v2 encoder; the slice generates, resumes and scores."""
    from face_onnx import export_tiny_recognizer, export_tiny_scrfd

    from triptych.baselines.photomaker_faces import AntelopeFaceEmbedder
    from triptych.vision.face import ArcFaceBackend, ScrfdDetector

    protocol = load_protocol()
    ids = protocol.ids[:2]
    photos = {ids[0]: _portrait_photos("newton_man"), ids[1]: _portrait_photos("scarletthead_woman")}
    export_tiny_scrfd(tmp_path / "scrfd.onnx", [a for arrays in photos.values() for a in arrays])
    export_tiny_recognizer(tmp_path / "glintr.onnx")
    records = [{"name": f"tiny_{n}", "path": tmp_path / f"{n}.onnx", "sha256": None} for n in ("scrfd", "glintr")]
    embedder = AntelopeFaceEmbedder(*records)
    pipe, encoder = _tiny_components("v2")
    generator = PhotoMakerGenerator(pipe, encoder, "v2", TINY, device="cpu", face_embedder=embedder)

    references = [torch.from_numpy(a).permute(2, 0, 1).float() / 255 for a in photos[ids[0]]]
    raw = embedder(references[0])
    assert raw.shape == (512,) and raw.dtype == torch.float32 and float(raw.norm()) != pytest.approx(1.0)
    first = ScrfdDetector(records[0]).detect(photos[ids[0]][0])[0]  # faces[0]: the best score after NMS
    assert torch.equal(raw, torch.from_numpy(ArcFaceBackend(records[1], None).raw_embedding(photos[ids[0]][0], first)))
    cond = generator.encode(references, "a man wearing a hat")
    assert int(cond.class_tokens_mask.sum()) == 2 * len(references)  # v2: two ID tokens per photo
    expected = encoder(id_pixel_values(references), generator._encode_trigger_prompt("a man img wearing a hat", 2)[0],
                       cond.class_tokens_mask, torch.stack([embedder(r) for r in references])[None])
    assert torch.equal(cond.fused, expected)
    export_tiny_scrfd(tmp_path / "blind.onnx", photos[ids[0]], blind=True)
    blind = AntelopeFaceEmbedder({"name": "blind", "path": tmp_path / "blind.onnx", "sha256": None}, records[1])
    with pytest.raises(NoFaceError, match="no face found in a reference photo .* any detection size"):
        blind(references[0])

    plan = _slice_plan(tmp_path / "refs", protocol, photos)
    requests = plan.images()
    out = tmp_path / "out"
    result = run_job(generator, requests, out, method="photomaker-v2", method_version="1", protocol=protocol,
                     seeds=plan.seeds(), describe=generator.describe(), progress=False)
    assert (result.generated, result.skipped) == (8, 0)
    assert all(Image.open(out / r.path).size == (64, 64) for r in requests)
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["generator"]["version"] == "v2" and summary["generator"]["tokens_per_image"] == 2
    again = run_job(generator, requests, out, method="photomaker-v2", method_version="1", protocol=protocol,
                    seeds=plan.seeds(), describe=generator.describe(), progress=False)
    assert (again.generated, again.skipped) == (0, 8)
    _score_slice(tmp_path, out, ids, len(requests))
