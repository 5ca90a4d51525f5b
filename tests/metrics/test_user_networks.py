"""Every registered metric variant that runs a network takes a user's file through ``measure --weights``
(issue 22, item 3): the list comes from the metric registry (each variant naming weights), never by hand.

For each one a small file of the variant's architecture is built by the weights rule
(``triptych/weights_rule.py``): the network's own class at its published size where that is small (AlexNet,
VGG16, Inception, I3D, RAFT-Large, InceptionResnetV1, ViT-S), the same class narrow and shallow where the
published one is too large for the suite (the CLIP, HPSv2, PickScore and ImageReward transformers, whose
user files carry their architecture: open_clip's layout read from the tensors, PickScore's ``config.json``
and ImageReward's ``med_config.json`` beside the file), and an ONNX of ArcFace's interface
(tests/face_onnx.py). The measurement must record the file with its sha256 as user-supplied, in place of
the variant's first weights entry, and label the rows ``VARIANT+user-<sha8>``. Where another of the
variant's registry files is absent here (the SCRFD detector beside ArcFace, PWC-Net beside FloLPIPS), the
user file is accepted and the error names that other file. ``face_sim:dlib`` (dlib-serialised networks,
which no Python tool writes) refuses ``--weights`` by name. Peer-value checks of user trunks are in
tests/metrics/test_user_trunks.py, test_preference_scores.py (HPSv2, PickScore), test_vfid.py, test_pvcs.py and
test_face_div.py."""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from triptych import weights
from triptych.registry import registry
from triptych.weights_rule import rule_state_dict, rule_tensor

from conftest import REPO

PORTRAITS = REPO / "datasets/samples/portraits"
NEWTON = sorted((PORTRAITS / "newton_man").iterdir())
PROMPT = "a photo of a man wearing a spacesuit, on the moon"


def network_variants() -> list[tuple[str, str]]:
    """(metric, variant) of every registered variant that names weights: the metrics with a network."""
    return sorted((metric.name, variant.name) for metric in registry().metrics.values()
                  for variant in metric.variants.values() if variant.weights)


# --- small files of each architecture, keyed by the registry entry they stand in for -------------------------


def _save(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(state, path)
    return path


def _features(builder: str) -> Callable[[Path], Path]:
    import torchvision

    class Trunk(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = getattr(torchvision.models, builder)(weights=None).features

    return lambda folder: _save(rule_state_dict(Trunk(), 3, 1.0), folder / f"{builder}.pth")


def _module(build: Callable[[], torch.nn.Module], name: str) -> Callable[[Path], Path]:
    return lambda folder: _save(rule_state_dict(build(), 3, 1.0), folder / name)


def _rule(shapes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights rule's tensor for every key of a layout (a checkpoint's keys and shapes)."""
    return {k: torch.from_numpy(rule_tensor(k, tuple(v.shape), 3, 1.0)) for k, v in shapes.items()}


def _open_clip(vision_head_width: int, patch: int, quick_gelu: bool) -> Callable[[Path], Path]:
    """open_clip's CLIP, 2 layers each side, the published model's head width, vocabulary and context."""
    def build() -> torch.nn.Module:
        import open_clip

        return open_clip.model.CLIP(32, {"layers": 2, "width": 2 * vision_head_width, "head_width": vision_head_width,
                                         "patch_size": patch, "image_size": 224},
                                    {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 2},
                                    quick_gelu=quick_gelu)

    return _module(build, "clip.pt")


def _pickscore(folder: Path) -> Path:
    from safetensors.torch import save_file
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(text_config={"hidden_size": 64, "intermediate_size": 256, "num_attention_heads": 2,
                                     "num_hidden_layers": 2, "max_position_embeddings": 77, "vocab_size": 49408,
                                     "hidden_act": "gelu", "eos_token_id": 2},
                        vision_config={"hidden_size": 160, "intermediate_size": 640, "num_attention_heads": 2,
                                       "num_hidden_layers": 2, "patch_size": 14, "image_size": 224,
                                       "hidden_act": "gelu"}, projection_dim=32)
    config.to_json_file(str(folder / "config.json"))
    save_file(rule_state_dict(CLIPModel(config), 3, 1.0), str(folder / "model.safetensors"))
    return folder / "model.safetensors"


def _image_reward(folder: Path) -> Path:
    from test_preference_scores import IR_MED, IR_VOCAB

    from triptych.metrics import image_reward

    (folder / "med_config.json").write_text(json.dumps({**IR_MED, "encoder_width": 128}))
    (folder / "vocab.txt").write_text("\n".join(IR_VOCAB) + "\n")
    vision = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 224, "patch_size": 16}
    state = _rule(image_reward.checkpoint_layout(str(folder), vision))
    state["blip.text_encoder.embeddings.position_ids"] = torch.arange(IR_MED["max_position_embeddings"])[None]
    return _save(state, folder / "ImageReward.pt")


def _arcface(folder: Path) -> Path:
    from face_onnx import export_tiny_recognizer

    export_tiny_recognizer(folder / "arcface.onnx")
    return folder / "arcface.onnx"


def _user_files() -> dict[str, Callable[[Path], Path]]:
    from torchvision.models.optical_flow import raft_large

    from triptych.metrics import dino, fid, i3d
    from triptych.vision import face

    return {
        "lpips_backbone_alex": _features("alexnet"),
        "lpips_backbone_vgg16": _features("vgg16"),
        "inception_fid": _module(lambda: fid.FidInception().net, "inception.pth"),
        "i3d_rgb_imagenet": _module(i3d.build_i3d, "i3d.pt"),
        "raft_large_c_t_skht_v2": _module(lambda: raft_large(weights=None, progress=False), "raft.pth"),
        "facenet_vggface2": _module(face.build_facenet, "facenet.pt"),
        "arcface_w600k_r50": _arcface,
        "dino_vits16": _module(lambda: dino.build_vit(dino.DINO_MODELS["dino_vits16"]), "dino.pth"),
        "dinov2_vits14": lambda folder: _save(_rule(dino.dinov2_published_state()), folder / "dinov2.pth"),
        "clip_vit_b32_openai": _open_clip(64, 32, quick_gelu=True),
        "clip_vit_l14_openai": _open_clip(64, 14, quick_gelu=True),
        "hps_v2_0": _open_clip(80, 14, quick_gelu=False),
        "hps_v2_1": _open_clip(80, 14, quick_gelu=False),
        "pickscore_v1": _pickscore,
        "image_reward_v1": _image_reward,
    }


# dlib's networks are dlib-serialised files that no Python tool writes: face_sim:dlib refuses --weights
NO_USER_FILE = {"dlib_shape_predictor_5"}


# --- inputs of each measure kind --------------------------------------------------------------------------------


def _frames(folder: Path, count: int, size: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for t in range(count):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"{t:05d}.png")


def _inputs(kind: str, root: Path) -> list:
    """``measure`` arguments of a tiny input of ``kind``."""
    pred, gt, mask = root / "pred", root / "gt", root / "mask"
    if kind in ("paired_image", "masked_image"):
        _frames(pred, 1, (64, 80), 0)
        _frames(gt, 1, (64, 80), 1)
        Image.fromarray(np.pad(np.full((20, 30), 255, np.uint8), ((20, 24), (20, 30)))).save(root / "mask.png")
        return ["--pred", pred / "00000.png", "--gt", gt / "00000.png",
                *(["--mask", root / "mask.png"] if kind == "masked_image" else [])]
    if kind in ("image_set", "video_set", "video_frames", "video_flow"):
        count, size = {"video_flow": (2, (128, 128)), "image_set": (2, (48, 56))}.get(kind, (6, (48, 56)))
        for side, seed in ((pred, 0), (gt, 5), (mask, 9)):
            for video in ("a", "b"):
                _frames(side / video, count, size, seed + ord(video))
        extra = {"video_set": ["--clip-len", 6, "--clip-stride", 6]}.get(kind, [])
        return ["--pred", pred, "--gt", gt, *extra]
    if kind == "text_image":
        (root / "prompt.txt").write_text(PROMPT + "\n")
        return ["--pred", NEWTON[0], "--gt", root / "prompt.txt"]
    if kind == "identity_images":
        return ["--pred", NEWTON[0], "--gt", NEWTON[1]]
    if kind == "image_groups":
        for i, src in enumerate(NEWTON[:2]):
            (pred / "newton/00_a").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, pred / f"newton/00_a/{i}{src.suffix}")
        return ["--pred", pred]
    raise AssertionError(f"no tiny input for measure kind {kind!r}: add one here")


@pytest.mark.parametrize("metric,variant", network_variants())
def test_every_network_metric_takes_a_user_file(metric, variant, tmp_path, run_cli, monkeypatch):
    torch.set_num_threads(1)
    spec = registry().metric(metric)
    chosen = spec.variant(variant)
    replaced = chosen.weights[0]
    if replaced in NO_USER_FILE:  # refused before any input is read, naming the variant and its files
        (tmp_path / "net.dat").write_bytes(b"\0" * 64)
        code, _, err = run_cli("measure", metric, "--variant", variant, "--pred", NEWTON[0], "--gt", NEWTON[1],
                               "--weights", tmp_path / "net.dat")
        assert code == 2 and f"{metric}:{variant} does not take a user file for its weights ({replaced}" in err
        return
    builders = _user_files()
    assert replaced in builders, f"{metric}:{variant}: add a small user file of {replaced}'s architecture"
    (tmp_path / "user").mkdir()
    path = builders[replaced](tmp_path / "user")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    args = _inputs(spec.kind, tmp_path)
    if spec.kind.startswith("video_") and chosen.inputs.mode("masks") == "required":
        args += ["--mask", tmp_path / "mask"]
    code, out, err = run_cli("measure", metric, "--variant", variant, *args, "--weights", path, "--json")
    kind = importlib.import_module(f"triptych.measure_kinds.{spec.kind}")
    others = [n for n in chosen.weights[1:] if not weights.is_present(weights.get_spec(n))]
    if others and "--weights" not in kind.OPTIONS:  # the user file is taken; the variant's other file is not here
        assert code == 2 and others[0] in err and str(path) not in err, err
        return
    assert code == 0, err
    doc = json.loads(out)
    assert doc["metric_variant"] == f"{variant}+user-{sha[:8]}"
    user = next(w for w in doc["weights"] if w.get("sha256") == sha)
    assert user["user_supplied"] is True and user["registered"] is False
    assert user.get("replaces") in (replaced, None) and np.isfinite(doc["aggregate"]["value"])
    assert doc["metric_variant"] not in spec.variants


# --- the architecture a user file carries, read from published layouts ------------------------------------------


@pytest.mark.parametrize("arch,head_widths", [("ViT-B-32", (64, 64)), ("ViT-L-14", (64, 64)), ("ViT-H-14", (80, 64))])
def test_the_clip_read_from_a_published_layout_is_the_published_architecture(arch, head_widths):
    """A user's CLIP / HPSv2 file carries its architecture in its tensors: on the layouts of OpenAI's ViT-B/32 and
    ViT-L/14 (CLIP-T / CLIP-I) and of ViT-H-14 (HPSv2; ``preference.HPS_HEAD_WIDTHS``), the configuration read
    back is open_clip's own model configuration of that name (shapes only, on the meta device)."""
    import open_clip

    from triptych.metrics import preference
    from triptych.metrics.clip_score import clip_config_from_state

    if arch == "ViT-H-14":
        assert head_widths == preference.HPS_HEAD_WIDTHS
    state = open_clip.create_model(arch, pretrained=None, device="meta").state_dict()
    config = clip_config_from_state(state, vision_head_width=head_widths[0], text_head_width=head_widths[1])
    published = open_clip.get_model_config(arch)
    assert config["embed_dim"] == published["embed_dim"]
    for side in ("vision_cfg", "text_cfg"):
        assert {k: config[side][k] for k in published[side]} == published[side]
        assert config[side]["mlp_ratio"] == 4.0
    assert config["vision_cfg"]["width"] // config["vision_cfg"]["head_width"] == {"ViT-H-14": 16, "ViT-L-14": 16,
                                                                                   "ViT-B-32": 12}[arch]


def test_the_vit_read_from_imagereward_pt_layout_is_vit_large(tmp_path):
    """A user's ImageReward file carries its ViT in its tensors: on ImageReward.pt's full-size layout (BLIP's
    ViT-L/16 at 224 px) it reads back as ``VIT_LARGE``, the published network."""
    from test_preference_scores import IR_MED

    from triptych.metrics import image_reward

    (tmp_path / "med_config.json").write_text(json.dumps({
        **IR_MED, "hidden_size": 768, "intermediate_size": 3072, "max_position_embeddings": 512,
        "num_attention_heads": 12, "num_hidden_layers": 12, "vocab_size": 30524, "encoder_width": 768}))
    with torch.device("meta"):
        layout = image_reward.checkpoint_layout(str(tmp_path))
    assert image_reward.vision_config_from_checkpoint(layout) == image_reward.VIT_LARGE


@pytest.mark.parametrize("entry", ["arcface_w600k_r50", "clip_vit_b32_openai", "dlib_face_recognition_resnet_v1"])
def test_weights_import_user_takes_the_file_the_metric_reads(entry, tmp_path, run_cli, monkeypatch):
    """``weights import NAME FILE --user`` keeps a user file of the kind ``measure --weights`` reads for that
    entry: an ONNX for the insightface models, a plain state dict for OpenAI's CLIP (a TorchScript entry);
    dlib's serialised networks have no user-file path and are refused by name. A file of the wrong kind is
    refused naming the file."""
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    (tmp_path / "user").mkdir()
    if entry.startswith("dlib"):
        path = tmp_path / "user/net.dat"
        path.write_bytes(b"\0" * 64)
        code, _, err = run_cli("weights", "import", entry, path, "--user")
        assert code != 0 and "dat file: a user file cannot stand in for it" in err
        return
    path = _user_files()[entry](tmp_path / "user")
    code, out, err = run_cli("weights", "import", entry, path, "--user")
    assert code == 0, err
    kind, name, digest, stored = out.strip().split("\t")
    assert (kind, name, digest) == ("user", entry, f"sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}")
    assert Path(stored).read_bytes() == path.read_bytes()
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not a model\n")
    code, _, err = run_cli("weights", "import", entry, wrong, "--user")
    assert code == 2 and "wrong.txt" in err
