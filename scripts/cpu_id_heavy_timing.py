"""Seconds per image of every heavy ID stage on this machine's CPU, with the real full-size architectures.

Speed does not depend on the weights, so each heavy model is built at its registered checkpoint's full
size with rule-built or random weights, registered in a private TRIPTYCH_HOME, and run through the real
stage commands (``python -m triptych.pipelines.<stage>``, model loading included) on the 6 kept sample
portraits; the numbers are read from the stages' timing files (``seconds_per_computed_item``) and printed
as rows of the README's table "ID dataset: light and heavy backends", with the 1-minute load average
beside each (docs/id_pipeline.md, "Measured speed"). The models:

- RetinaFace mobilenet0.25 and ResNet-50: the port's architectures (``triptych.vision.retinaface``) with
  rule-built weights (docs/weights_rule.md), imported under their registry names as released ``.pth``
  files (keys with ``module.``);
- ArcFace w600k_r50: an IResNet-50 (insightface's arcface_torch ``iresnet50``: 3-4-14-3 improved basic
  blocks, 512-d embedding from 1x3x112x112) built here in torch with rule-built weights and exported to
  ONNX; ``w600k_r50`` is pinned to its published sha256, so this file is registered as
  ``arcface_iresnet50_rule`` in a private registry (``TRIPTYCH_WEIGHTS_EXTRA``) and passed as
  ``--recognizer``;
- Mask2Former: the COCO panoptic Swin-L configuration of ``facebook/mask2former-swin-large-coco-panoptic``
  (Swin-L window 12 at 384 px, 200 queries, 133 classes, its 384x384 image processor) built offline with
  transformers' config objects, random weights, saved as ``mask2former_swin_large_coco_panoptic``'s files;
- BLIP-2 OPT-2.7b: ``Salesforce/blip2-opt-2.7b``'s configuration (ViT-g/14 at 224 px, Q-Former with 32
  queries, OPT-2.7b) with random weights in bfloat16 (``--blip2-dtype``; float32 would need about 16 GB),
  saved as ``blip2_opt_2_7b``'s two shards with a word-level tokenizer of OPT's vocabulary size. Random
  weights never write a class word, so every caption runs its 30 new tokens and the image is dropped:
  ``--caption-tries`` (1 by default) captions are drawn per image, and the time is per image at that
  many captions.

The Hugging Face files are written into their entries' cache folders, where the weights manager trusts them
on first use after transformers loads them strictly into their class (docs/id_pipeline.md); that check runs
in a child process before the stages, so it is not in their time.

Random weights find no face, no person and no class word, so each heavy stage after detection reads the
table of the light stages (dlib's faces with 5 landmarks, GrabCut crops), the same 6 portraits that real
models keep, and is timed on its own copy of it.
spaCy's English pipeline is not on PyPI: the ``spacy`` tagger is timed only where it is installed.

Usage: .venv/bin/python scripts/cpu_id_heavy_timing.py [--work DIR] [--backbones mobilenet0.25 resnet50]
       [--skip-blip2] [--blip2-dtype bfloat16|float32] [--caption-tries N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PORTRAITS = REPO / "datasets/samples/portraits"
STAGES = ("id_collect", "id_detect", "id_verify", "id_crop_mask", "id_caption")
ARCFACE = "arcface_iresnet50_rule"
MASK2FORMER = "mask2former_swin_large_coco_panoptic"
BLIP2 = "blip2_opt_2_7b"
PRIVATE_ENTRY = """{name}:
  description: IResNet-50 (w600k_r50's architecture) with rule-built weights, exported to ONNX (timing only)
  urls: [https://example.invalid/{name}/{filename}]
  filename: {filename}
  size: null
  licence: none (built by scripts/cpu_id_heavy_timing.py)
  sha256: {sha256}
  sha256_source: the export of scripts/cpu_id_heavy_timing.py
  format: onnx
  container_key: null
  source: download
"""


# --------------------------------------------------------------------------------------------------
# ArcFace's recognizer: IResNet-50 (Deng et al., ArcFace; insightface arcface_torch), written from its description

def iresnet50() -> "torch.nn.Module":
    """Stem 3x3 conv (64) + BN + PReLU; 4 stages of improved basic blocks (BN, 3x3 conv, BN, PReLU, 3x3 conv
    with the stage's stride 2, BN, plus the shortcut: 1x1 conv stride 2 + BN where the shape changes) with
    64/128/256/512 channels and 3/4/14/3 blocks; BN, flatten, linear 512*7*7 -> 512, BN1d."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, inplanes: int, planes: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.BatchNorm2d(inplanes, eps=1e-5), nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False),
                nn.BatchNorm2d(planes, eps=1e-5), nn.PReLU(planes), nn.Conv2d(planes, planes, 3, stride, 1, bias=False),
                nn.BatchNorm2d(planes, eps=1e-5))
            self.shortcut = (nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
                             if stride != 1 or inplanes != planes else nn.Identity())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x) + self.shortcut(x)

    layers, inplanes = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64, eps=1e-5), nn.PReLU(64)], 64
    for planes, blocks in zip((64, 128, 256, 512), (3, 4, 14, 3)):
        for index in range(blocks):
            layers.append(Block(inplanes, planes, 2 if index == 0 else 1))
            inplanes = planes
    layers += [nn.BatchNorm2d(512, eps=1e-5), nn.Flatten(), nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512)]
    return nn.Sequential(*layers)


def export_arcface(home: Path, extra: Path) -> None:
    import torch

    from triptych.weights_rule import apply_weights_rule

    model = iresnet50().eval()
    apply_weights_rule(model, seed=600, gain=1.0)
    target = home / "weights" / ARCFACE / "iresnet50.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, torch.zeros(1, 3, 112, 112), str(target), input_names=["input.1"],
                      output_names=["embedding"], opset_version=13, dynamo=False)
    sha = hashlib.sha256(target.read_bytes()).hexdigest()
    extra.write_text(PRIVATE_ENTRY.format(name=ARCFACE, filename=target.name, sha256=sha))
    print(f"arcface: IResNet-50, {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, {target}")


# --------------------------------------------------------------------------------------------------
# RetinaFace, Mask2Former, BLIP-2 under their registry names

def import_retinaface(staging: Path, backbone: str) -> None:
    import torch

    from triptych import weights
    from triptych.vision.retinaface import RetinaFace, backbone_spec
    from triptych.weights_rule import apply_weights_rule

    model = RetinaFace(backbone)
    apply_weights_rule(model, seed=501, gain=1.0)
    released = staging / f"{backbone}_Final.pth"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, released)
    weights.import_file(backbone_spec(backbone).weights, released)


def coco_panoptic_labels() -> dict[int, str]:
    """133 classes with 'person' first, as in COCO panoptic's contiguous ids (the other names do not change
    the speed and are numbered here)."""
    return {0: "person", **{i: f"coco_panoptic_{i}" for i in range(1, 133)}}


def save_mask2former() -> None:
    import torch
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, Mask2FormerImageProcessor, SwinConfig

    from triptych import weights

    labels = coco_panoptic_labels()
    backbone = SwinConfig(image_size=384, embed_dim=192, depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48],
                          window_size=12, drop_path_rate=0.3, out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(backbone_config=backbone, num_queries=200, id2label=labels,
                               label2id={v: k for k, v in labels.items()})
    torch.manual_seed(0)
    model = Mask2FormerForUniversalSegmentation(config).eval()
    folder = weights.cache_path(weights.get_spec(MASK2FORMER)).parent
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    print(f"mask2former: Swin-L COCO panoptic, {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters")
    del model
    Mask2FormerImageProcessor(size={"height": 384, "width": 384}, size_divisor=32, num_labels=133,
                              ignore_index=255, do_reduce_labels=False).save_pretrained(folder)


def save_blip2(dtype: str) -> None:
    """BLIP-2 OPT-2.7b at full size, written as the released repository's two shards with its companions;
    runs in a child process, so that its memory is returned before the checkpoint is checked and loaded."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor, OPTConfig,
                              PreTrainedTokenizerFast)

    vocab = 50272  # OPT's
    words = ["<pad>", "</s>", "<unk>"] + [f"w{i}" for i in range(3, vocab - 1)] + ["<image>"]
    word_level = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=word_level, bos_token="</s>", eos_token="</s>",
                                        pad_token="<pad>", unk_token="<unk>", additional_special_tokens=["<image>"])
    text = OPTConfig(vocab_size=vocab, hidden_size=2560, num_hidden_layers=32, num_attention_heads=32, ffn_dim=10240,
                     max_position_embeddings=2048, word_embed_proj_dim=2560, bos_token_id=2, eos_token_id=2,
                     pad_token_id=1)
    config = Blip2Config(vision_config=dict(hidden_size=1408, intermediate_size=6144, num_hidden_layers=39,
                                            num_attention_heads=16, image_size=224, patch_size=14),
                         qformer_config=dict(encoder_hidden_size=1408), text_config=text.to_dict(),
                         num_query_tokens=32, image_token_index=vocab - 1)
    torch.manual_seed(0)
    torch.set_default_dtype(getattr(torch, dtype))
    model = Blip2ForConditionalGeneration(config).eval()
    print(f"blip2: OPT-2.7b, {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters in {dtype}")
    from triptych import weights

    folder = weights.cache_path(weights.get_spec(BLIP2)).parent
    shard = f"{int(sum(p.numel() * p.element_size() for p in model.parameters()) / 2 / 1e6) + 200}MB"
    model.save_pretrained(folder, max_shard_size=shard)
    del model
    shards = sorted(p.name for p in folder.glob("model-*-of-*.safetensors"))
    if shards != ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]:
        raise SystemExit(f"blip2: expected the released repository's 2 shards, got {shards}")
    Blip2Processor(image_processor=BlipImageProcessor(size={"height": 224, "width": 224}), tokenizer=tokenizer,
                   num_query_tokens=32).save_pretrained(folder)


def pin(env: dict[str, str], name: str) -> None:
    """Trust the cached file on first use (``triptych.weights``: only after transformers loads the checkpoint
    beside it strictly into its class), in a child process, so that neither this load nor its memory is in
    the stage's time."""
    subprocess.run([sys.executable, "-c", f"from triptych import weights; print(weights.describe({name!r}))"],
                   check=True, env=env)


# --------------------------------------------------------------------------------------------------
# Running the stages

def stage(env: dict[str, str], name: str, out: Path, *argv: str) -> dict:
    """Run one stage command; its timing file with the 1-minute load average before and after."""
    timing = out / "timing" / f"{name}.json"
    before = os.getloadavg()[0]
    result = subprocess.run([sys.executable, "-m", f"triptych.pipelines.{name}", "--out", str(out), "--timing",
                             str(timing), *argv], cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{name} failed:\n{result.stdout}\n{result.stderr}")
    print(result.stdout.strip())
    return {**json.loads(timing.read_text()), "load_before": before, "load_after": os.getloadavg()[0]}


def row(label: str, timing: dict, note: str = "") -> str:
    per = timing["seconds_per_computed_item"]
    return (f"| {label} | {'-' if per is None else f'{per:.2f}'} s/image over {timing['computed']} computed "
            f"| load {timing['load_before']:.1f} -> {timing['load_after']:.1f} | "
            f"model loads {timing.get('model_loads', {}).get('loads', '-')} |{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=REPO / "datasets/build/id-cpu-timing")
    parser.add_argument("--backbones", nargs="+", default=["mobilenet0.25", "resnet50"])
    parser.add_argument("--stages", nargs="+", default=["detect", "verify", "crop_mask", "caption"],
                        help="the heavy stages to time")
    parser.add_argument("--skip-blip2", action="store_true", help="no BLIP-2 (it needs about 8 GB of memory)")
    parser.add_argument("--blip2-dtype", default="bfloat16", choices=("bfloat16", "float32"))
    parser.add_argument("--caption-tries", type=int, default=1)
    parser.add_argument("--build-only", choices=("blip2",), help=argparse.SUPPRESS)  # the child process of BLIP-2
    args = parser.parse_args()
    home, staging, out = args.work / "home", args.work / "staging", args.work / "id"
    extra = args.work / "registry.yaml"
    if args.build_only:
        save_blip2(args.blip2_dtype)
        return
    env = {**os.environ, "TRIPTYCH_HOME": str(home), "TRIPTYCH_WEIGHTS_EXTRA": str(extra), "TRIPTYCH_OFFLINE": "1",
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    os.environ.update({k: env[k] for k in ("TRIPTYCH_HOME", "TRIPTYCH_WEIGHTS_EXTRA", "TRIPTYCH_OFFLINE", "HF_HUB_OFFLINE")})
    staging.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if not extra.is_file():
        export_arcface(home, extra)
    from triptych import weights

    weights._load_registry.cache_clear()
    for backbone in args.backbones:
        import_retinaface(staging, backbone)
    if not weights.is_present(weights.get_spec(MASK2FORMER)):
        save_mask2former()
    pin(env, MASK2FORMER)
    if "caption" in args.stages and not args.skip_blip2:
        if not weights.is_present(weights.get_spec(BLIP2)):
            subprocess.run([sys.executable, __file__, "--work", str(args.work), "--build-only", "blip2",
                            "--blip2-dtype", args.blip2_dtype], check=True, env=env)
        pin(env, BLIP2)
    print(f"models built and imported in {time.perf_counter() - start:.0f} s")

    shutil.rmtree(out, ignore_errors=True)  # a fresh run: every image computed, no cache
    rows = []
    for backbone in args.backbones if "detect" in args.stages else ():
        detect_out = args.work / f"detect-{backbone}"
        shutil.rmtree(detect_out, ignore_errors=True)
        stage(env, "id_collect", detect_out, "--root", str(PORTRAITS))
        rows.append(row(f"`id_detect` RetinaFace {backbone}",
                        stage(env, "id_detect", detect_out, "--backend", "heavy", "--backbone", backbone)))
    # the light stages' faces, crops and captions feed the heavy stages (random weights find no face, no
    # person and no class word), each heavy stage timed on a copy of the table it reads
    stage(env, "id_collect", out, "--root", str(PORTRAITS))
    stage(env, "id_detect", out)
    for name, heavy_argv, label in (
            ("id_verify", ("--recognizer", ARCFACE), "`id_verify` ArcFace IResNet-50 (per face)"),
            ("id_crop_mask", (), "`id_crop_mask` Mask2Former Swin-L"),
            ("id_caption", ("--dtype", args.blip2_dtype, "--tries", str(args.caption_tries)),
             f"`id_caption` BLIP-2 OPT-2.7b ({args.blip2_dtype}, {args.caption_tries} caption(s) of 30 tokens)")):
        if name.removeprefix("id_") in args.stages and not (name == "id_caption" and args.skip_blip2):
            heavy_out = args.work / f"heavy-{name}"
            shutil.rmtree(heavy_out, ignore_errors=True)
            heavy_out.mkdir(parents=True)
            previous = STAGES[STAGES.index(name) - 1]
            shutil.copy(out / f"{previous}.json", heavy_out / f"{previous}.json")
            rows.append(row(label, stage(env, name, heavy_out, "--backend", "heavy", *heavy_argv)))
        stage(env, name, out)
    try:
        import spacy  # noqa: F401
        rows.append(row("`id_tag` spaCy", stage(env, "id_tag", out, "--backend", "heavy")))
    except ImportError:
        rows.append("| `id_tag` spaCy | not measured: spaCy and its English pipeline are not installed |")
    print(f"\nCPU: {os.cpu_count()} cores; seconds per computed image, model loading included:")
    print("\n".join(rows))
    (args.work / "rows.md").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
