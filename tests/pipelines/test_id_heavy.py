"""The ID pipeline's heavy backends with same-architecture random weights (docs/weights_rule.md).

ArcFace: an ONNX model exported from a small torch network with w600k_r50's interface (1x3x112x112 ->
512) runs through onnxruntime, on crops aligned from 5 landmarks, into the thesis' verification rule.
Every heavy stage runs end to end under ``dvc exp run`` with tiny same-architecture models in a private cache,
and the stage commands load each model once per worker process on the local and the Ray executor.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO
from face_onnx import export_tiny_recognizer
from test_pipelines import pipeline_repo  # noqa: F401 (the fixture)
from triptych.media import read_rgb
from triptych.vision import face

PORTRAITS = REPO / "datasets/samples/portraits"


def test_exported_recognizer_embeds_the_aligned_crop(tmp_path: Path) -> None:
    model = export_tiny_recognizer(tmp_path / "tiny.onnx")
    backend = face.ArcFaceBackend({"name": "tiny", "path": tmp_path / "tiny.onnx", "sha256": None}, None)
    image = read_rgb(PORTRAITS / "newton_man/newton_0.jpg")
    template = face.ARCFACE_TEMPLATE.astype(np.float64)
    # landmarks: the template scaled 4x and moved; the aligned crop must then be the region it came from
    points = template * 4 + [300, 200]
    box = face.FaceBox(300, 200, 748, 648, 0.9, tuple(map(tuple, points)))
    crop = backend.crop(image, box)
    region = np.asarray(torch.nn.functional.interpolate(
        torch.from_numpy(image[200:648, 300:748].astype(np.float32)).permute(2, 0, 1)[None], size=(112, 112),
        mode="area")[0].permute(1, 2, 0))
    assert np.abs(crop.astype(np.float32) - region).mean() < 12  # bilinear sampling of a 4x larger region
    with torch.no_grad():
        direct = model(torch.from_numpy((crop.astype(np.float32) - 127.5) / 127.5).permute(2, 0, 1)[None])[0].numpy()
    embedding = backend.embed(image, box)
    assert embedding.shape == (512,)
    assert np.allclose(embedding, direct / np.linalg.norm(direct), atol=1e-5)


# --------------------------------------------------------------------------------------------------
# Every heavy stage end to end under DVC, with same-architecture random weights in a private cache

TINY_FILES = {"mask2former_tiny": ("model.safetensors", "Mask2FormerForUniversalSegmentation"),
              "blip2_tiny": ("model.safetensors", "Blip2ForConditionalGeneration")}


def tiny_registry(recognizer_sha256: str) -> str:
    """Registry entries (TRIPTYCH_WEIGHTS_EXTRA) of the tiny same-architecture files: the Hugging Face
    models unpinned, with the architecture their config.json describes (checked as for the real entries);
    the ONNX recognizer pinned to the file the test exported (an ONNX graph has no state dict to check)."""
    entry = """{name}:
  description: a tiny same-architecture stand-in (tests)
  urls: [https://example.invalid/{name}/{filename}]
  filename: {filename}
  size: null
  licence: test file
  sha256: {sha256}
  sha256_source: {source}
  format: {fmt}
  container_key: null
  source: download
"""
    hf = "".join(entry.format(name=name, filename=filename, sha256="null", source="null", fmt="safetensors")
                 + f"  architecture: {{callable: 'triptych.vision.hf_folder:architecture_state', args: "
                   f"{{folder: '{{folder}}', model: {model}, weights_file: {filename}}}}}\n"
                 for name, (filename, model) in TINY_FILES.items())
    return hf + entry.format(name="arcface_tiny", filename="tiny.onnx", sha256=recognizer_sha256,
                             source="the test's own export", fmt="onnx")


WORDS = ["<pad>", "</s>", "<unk>", "<image>", "a", "photo", "of", "the", "man", "woman", "smiling", "hat", "in"]


def save_tiny_mask2former(folder: Path) -> None:
    """Mask2Former (Swin backbone, pixel decoder, masked-attention decoder) at toy width, classes 'person' and
    'wall', 2 queries; the class head's 'person' bias is raised by 3 so that random queries come out as
    persons above the panoptic post-processing's default threshold 0.8."""
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, Mask2FormerImageProcessor, SwinConfig

    backbone = SwinConfig(embed_dim=32, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4, image_size=64,
                          out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(backbone_config=backbone, hidden_dim=32, mask_feature_size=32, feature_size=32,
                               encoder_feedforward_dim=32, dim_feedforward=32, num_queries=2, encoder_layers=1,
                               decoder_layers=2, num_attention_heads=2, id2label={0: "person", 1: "wall"},
                               label2id={"person": 0, "wall": 1})
    torch.manual_seed(0)
    model = Mask2FormerForUniversalSegmentation(config)
    with torch.no_grad():
        model.class_predictor.bias[0] += 3.0
    model.save_pretrained(folder)
    Mask2FormerImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}, size_divisor=32).save_pretrained(folder)


def save_tiny_blip2(folder: Path) -> None:
    """BLIP-2 (ViT, Q-Former, OPT) at toy width with a word-level tokenizer of 13 words; the special tokens'
    embeddings (tied to the output layer) are zero, so random logits favour words over end-of-text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor, OPTConfig,
                              PreTrainedTokenizerFast)

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.Whitespace(), decoders.WordPiece(prefix="##")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="</s>", eos_token="</s>", pad_token="<pad>",
                                        unk_token="<unk>", additional_special_tokens=["<image>"])
    text = OPTConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, ffn_dim=37,
                     max_position_embeddings=64, word_embed_proj_dim=32, bos_token_id=1, eos_token_id=1, pad_token_id=0)
    config = Blip2Config(vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                                            num_attention_heads=2, image_size=32, patch_size=8),
                         qformer_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                             intermediate_size=37, encoder_hidden_size=32),
                         text_config=text.to_dict(), num_query_tokens=4, image_token_index=WORDS.index("<image>"))
    torch.manual_seed(0)
    model = Blip2ForConditionalGeneration(config)
    with torch.no_grad():
        model.get_input_embeddings().weight[:4] = 0
    model.save_pretrained(folder)
    Blip2Processor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer,
                   num_query_tokens=4).save_pretrained(folder)


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory) -> dict[str, str]:
    """A TRIPTYCH_HOME holding rule-built RetinaFace mobilenet0.25 weights under its real registry name
    (imported as the released .pth with 'module.' keys) and tiny same-architecture models registered
    through TRIPTYCH_WEIGHTS_EXTRA; the environment that points triptych at them."""
    from triptych import weights
    from triptych.vision.retinaface import RetinaFace
    from triptych.weights_rule import apply_weights_rule

    root = tmp_path_factory.mktemp("private")
    home, extra = root / "home", root / "tiny.yaml"
    recognizer = root / "tiny.onnx"
    export_tiny_recognizer(recognizer)
    extra.write_text(tiny_registry(hashlib.sha256(recognizer.read_bytes()).hexdigest()))
    env = {"TRIPTYCH_HOME": str(home), "TRIPTYCH_WEIGHTS_EXTRA": str(extra), "TRIPTYCH_OFFLINE": "1",
           "HF_HUB_OFFLINE": "1"}
    detector = RetinaFace("mobilenet0.25")
    apply_weights_rule(detector, seed=501, gain=1.0)
    released = root / "mobilenet0.25_Final.pth"
    torch.save({f"module.{k}": v for k, v in detector.state_dict().items()}, released)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        weights._load_registry.cache_clear()
        weights.import_file("retinaface_mobilenet0_25", released)
        (home / "weights/arcface_tiny").mkdir(parents=True)
        shutil.copy(recognizer, home / "weights/arcface_tiny/tiny.onnx")
        save_tiny_mask2former(home / "weights/mask2former_tiny")
        save_tiny_blip2(home / "weights/blip2_tiny")
    weights._load_registry.cache_clear()
    return env


HEAVY_PARAMS = ("id_detect.backend=heavy", "id_detect.min_score=0.4", "id_verify.backend=heavy",
                "id_verify.recognizer=arcface_tiny", "id_crop_mask.backend=heavy", "id_crop_mask.model=mask2former_tiny",
                "id_caption.backend=heavy", "id_caption.model=blip2_tiny")


def test_dvc_exp_run_runs_every_heavy_stage_on_the_sample(pipeline_repo: Path, private_cache: dict,
                                                          monkeypatch) -> None:
    from test_pipelines import _dvc

    for key, value in private_cache.items():
        monkeypatch.setenv(key, value)
    repo = pipeline_repo
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, capture_output=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "sample"], cwd=repo, check=True)
    args = [a for p in HEAVY_PARAMS for a in ("-S", p)]
    output = _dvc(repo, "exp", "run", *args, "id_card")
    ran = {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}
    assert {"id_detect", "id_verify", "id_crop_mask", "id_caption", "id_tag", "id_card"} <= ran

    tables = {s: json.loads((repo / f"datasets/build/id/{s}.json").read_text())
              for s in ("id_detect", "id_verify", "id_crop_mask", "id_caption", "id_tag")}
    log = {s["stage"]: s for s in tables["id_tag"]["stages"]}
    assert log["id_detect"]["backend"].startswith("retinaface mobilenet0.25")
    assert log["id_verify"]["backend"].startswith("arcface")
    assert log["id_crop_mask"]["backend"].startswith("mask2former")
    assert log["id_caption"]["backend"].startswith("blip2")
    for stage, entry in (("id_detect", "retinaface_mobilenet0_25"), ("id_verify", "arcface_tiny"),
                         ("id_crop_mask", "mask2former_tiny"), ("id_caption", "blip2_tiny")):
        recorded = log[stage]["weights"][0]
        assert recorded["name"] == entry and len(recorded["sha256"]) == 64, stage

    # id_detect: RetinaFace rows above 0.4, at least 256 px, at most 5 per image, each with 5 landmarks
    detected = [r for r in tables["id_detect"]["records"] if r.get("faces")]
    assert detected and all(1 <= len(r["faces"]) <= 5 for r in detected)
    for face_ in (f for r in detected for f in r["faces"]):
        (x1, y1, x2, y2), score = face_["box"], face_["score"]
        assert min(x2 - x1, y2 - y1) >= 256 and score >= 0.4 and len(face_["landmarks"]) == 5
    # id_verify: the thesis' rule over 512-d ArcFace embeddings, with its sqrt(n - 1) bound per group
    for identity, group in log["id_verify"]["groups"].items():
        assert group["max_possible_z"] == pytest.approx(math.sqrt(group["n"] - 1) if group["n"] > 1 else 0.0)
        assert group["factor_can_drop"] is (8.0 < group["max_possible_z"]), identity
    # id_crop_mask: person masks inside the crop, overlapping the face box
    masked = [r for r in tables["id_crop_mask"]["records"] if r.get("mask_rle")]
    assert masked and all(r["mask_face_overlap_px"] > 0 for r in masked)
    # id_caption: greedy then sampled BLIP-2 captions; kept captions hold a class word, the others are dropped
    from triptych.pipelines.id_tag import class_words

    captioned = [r for r in tables["id_caption"]["records"] if "captions_drawn" in r]
    assert captioned
    for record in captioned:
        if record["status"] == "kept":
            assert class_words(record["caption"]) and record["caption"] == record["captions_drawn"][-1]
        else:
            assert record["dropped_reason"] == f"no class word in {len(record['captions_drawn'])} BLIP-2 captions"
    # id_tag: every kept caption carries the trigger word after the identity's class word
    for record in (r for r in tables["id_tag"]["records"] if r["status"] == "kept"):
        assert f"{record['group_class_word']} img" in record["tagged_caption"]


def test_a_hugging_face_checkpoint_pins_only_when_it_loads_strictly(tmp_path: Path) -> None:
    """The unpinned Hugging Face entries trust a file only after transformers loads it into the class of its
    config.json with no missing, unexpected or mis-shaped key; a checkpoint with one weight dropped and one
    foreign weight added is refused naming both."""
    from safetensors.torch import load_file, save_file

    from triptych.errors import TriptychError
    from triptych.vision.hf_folder import architecture_state

    save_tiny_mask2former(tmp_path)
    model = "Mask2FormerForUniversalSegmentation"
    shapes = architecture_state(str(tmp_path), model, "model.safetensors")
    state = load_file(tmp_path / "model.safetensors")
    assert {k: tuple(v.shape) for k, v in shapes.items()} == {k: tuple(v.shape) for k, v in state.items()}
    state.pop("class_predictor.bias")
    state["foreign.weight"] = torch.zeros(2)
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(TriptychError, match="does not load strictly") as info:
        architecture_state(str(tmp_path), model, "model.safetensors")
    assert "class_predictor.bias" in info.value.message and "foreign.weight" in info.value.message


# --------------------------------------------------------------------------------------------------
# Heavy models are loaded once per worker process, never once per image, on both executors

HEAVY_STAGES = {"id_detect": ("--min-score", "0.4"), "id_verify": ("--recognizer", "arcface_tiny"),
                "id_crop_mask": ("--model", "mask2former_tiny"), "id_caption": ("--model", "blip2_tiny")}


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_each_heavy_model_is_loaded_once_per_worker(tmp_path: Path, private_cache: dict, executor: str) -> None:
    """The real stage commands, each in its own process, on the sample portraits: the timing file counts the
    model loads of every process that loaded one (``model_loads``). Locally one process loads each model
    once; under Ray with 2 workers at most 2 processes do (the driver reads only the file's record), each
    once, while every image is computed."""
    import os
    import sys

    if executor == "ray":
        pytest.importorskip("ray")
    env = {**os.environ, **private_cache}
    out, timing = tmp_path / "id", tmp_path / "timing"

    def stage(name: str, *argv: str) -> None:
        result = subprocess.run([sys.executable, "-m", f"triptych.pipelines.{name}", "--out", str(out), *argv],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr

    stage("id_collect", "--root", str(PORTRAITS))
    for name, extra in HEAVY_STAGES.items():
        stage(name, "--backend", "heavy", "--executor", executor, "--workers", "2", "--timing",
              str(timing / f"{name}.json"), *extra)
    for name in HEAVY_STAGES:
        report = json.loads((timing / f"{name}.json").read_text())
        loads = report["model_loads"]
        assert report["cached"] == 0 and report["computed"] >= 4, name  # the 6 kept portraits (faces, for verify)
        assert loads["most_of_one_model_in_one_process"] == 1, (name, loads)
        assert loads["loads"] == loads["processes"], (name, loads)
        assert loads["processes"] == 1 if executor == "local" else 1 <= loads["processes"] <= 2, (name, loads)
