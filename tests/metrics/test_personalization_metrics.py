"""Personalization metrics from real encoders (CLIP-T, CLIP-I, DINO, face similarity / distance, FID, KID).

No pretrained weights exist offline: the encoders are the real architectures with weights built by the
weights rule (``triptych/weights_rule.py``), so these tests check plumbing, preprocessing and formulas
against independent computations and installed reference implementations (open_clip's transform,
pytorch-fid's InceptionV3, torchmetrics' KID); the real weights go through ``triptych.weights``, whose
missing-file error is checked here. MTCNN (facenet-pytorch wheel) and dlib are real and offline.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from triptych.errors import InputError, TriptychError
from triptych.media import read_rgb
from triptych.metrics import clip_score, dino, face_sim, fid, image_reward, kid, preference
from triptych.metrics.frechet import frechet_distance
from triptych.registry import registry
from triptych.vision import face
from triptych.weights import MissingWeightsError, get_spec
from triptych.weights_rule import apply_weights_rule, rule_tensor

from conftest import REPO

PORTRAITS = REPO / "datasets/samples/portraits"
NEWTON = sorted((PORTRAITS / "newton_man").iterdir())
SCARLETT = sorted((PORTRAITS / "scarletthead_woman").iterdir())
SEED, GAIN = 0, 1.0

NEW_METRICS = {"face_sim": ("arcface", "facenet", "dlib"), "face_dist": ("arcface",),
               "clip_t": ("dreambooth", "dreambooth_l14"), "clip_i": ("dreambooth", "dreambooth_l14"),
               "dino": ("dreambooth", "dinov2"), "fid": ("clean",), "kid": ("clean",)}


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def _rule_record(model: torch.nn.Module, name: str) -> dict:
    return {"name": f"weights-rule:{name}", "path": None, "sha256": apply_weights_rule(model, SEED, GAIN)}


# --- registry ------------------------------------------------------------------------------------------


def test_every_variant_resolves_and_names_registered_weights():
    reg = registry()
    for metric, variants in NEW_METRICS.items():
        spec = reg.metric(metric)
        assert tuple(sorted(spec.variants)) == tuple(sorted(variants))
        for v in spec.variants.values():
            assert callable(v.load())
            assert v.weights, f"{metric}/{v.name} records no weights"
            for name in v.weights:
                get_spec(name)  # raises on an unknown name
    assert reg.metric("face_dist").direction == "lower" and reg.metric("fid").level == "set"


# --- CLIP -------------------------------------------------------------------------------------------------


TINY_CLIP = "triptych-test-tiny-clip"  # the CLIP / VisionTransformer / TextTransformer code of ViT-B-32, narrow


@pytest.fixture(scope="module")
def clip_enc(tmp_path_factory) -> clip_score.ClipEncoder:
    """open_clip's CLIP class with ViT-B-32's patch size, input size, context and vocabulary, but 2 layers of
    width 64 (ViT-B-32 itself takes ~1 min to fill by the weights rule on two shared cores)."""
    import json

    import open_clip

    torch.set_num_threads(1)
    config = tmp_path_factory.mktemp("clip") / f"{TINY_CLIP}.json"
    vit_b32 = open_clip.get_model_config("ViT-B-32")
    config.write_text(json.dumps({
        "embed_dim": 32, "quick_gelu": True,
        "vision_cfg": {**vit_b32["vision_cfg"], "layers": 2, "width": 64},
        "text_cfg": {**vit_b32["text_cfg"], "layers": 2, "width": 64, "heads": 2}}))
    open_clip.add_model_config(config)
    enc = clip_score.build_clip(TINY_CLIP, "openai", {})
    return clip_score.ClipEncoder(enc.model, enc.preprocess, enc.tokenizer, enc.arch, enc.pretrained,
                                  _rule_record(enc.model, "clip"))


def test_clip_loads_an_openai_jit_state_dict_strictly(clip_enc):
    state = dict(clip_enc.model.state_dict())
    state.update(input_resolution=torch.tensor(224), context_length=torch.tensor(77), vocab_size=torch.tensor(49408))
    rebuilt = clip_score.build_clip(TINY_CLIP, "openai", {"sha256": "x"}, {k: v.half() if v.is_floating_point()
                                                                           else v for k, v in state.items()})
    assert next(rebuilt.model.parameters()).dtype == torch.float32  # fp16 OpenAI weights are widened
    with pytest.raises(RuntimeError, match="Missing key"):
        clip_score.build_clip(TINY_CLIP, "openai", {}, {k: v for k, v in state.items() if k != "logit_scale"})


def test_clip_preprocessing_is_open_clips_own_transform(clip_enc):
    import open_clip
    from PIL import Image

    _, _, reference = open_clip.create_model_and_transforms(TINY_CLIP, pretrained=None)
    image = Image.fromarray(read_rgb(NEWTON[0]))
    assert torch.equal(clip_enc.preprocess(image), reference(image))


def test_clip_t_and_clip_i_equal_independent_cosines(clip_enc):
    import open_clip
    from PIL import Image

    def embed(path):
        with torch.no_grad():
            return clip_enc.model.encode_image(clip_enc.preprocess(Image.open(path).convert("RGB"))[None])[0]

    prompt = "a photo of a man in a spacesuit"
    with torch.no_grad():
        text = clip_enc.model.encode_text(open_clip.get_tokenizer(TINY_CLIP)([prompt]))[0]
    expected_t = torch.nn.functional.cosine_similarity(embed(NEWTON[0]).double(), text.double(), dim=0).item()
    assert clip_score.clip_t(NEWTON[0], prompt, encoder=clip_enc) == pytest.approx(expected_t, abs=1e-6)

    refs = NEWTON[1:3]
    cosines = [torch.nn.functional.cosine_similarity(embed(NEWTON[0]).double(), embed(r).double(), dim=0).item()
               for r in refs]
    assert clip_score.clip_i(NEWTON[0], refs, encoder=clip_enc) == pytest.approx(np.mean(cosines), abs=1e-6)
    assert clip_score.clip_i(NEWTON[0], [NEWTON[0]], encoder=clip_enc) == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(TriptychError, match="prompt"):
        clip_score.clip_t(NEWTON[0], "  ", encoder=clip_enc)


# --- DINO ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dino_enc() -> dino.DinoEncoder:
    torch.set_num_threads(1)
    model = dino.build_vit("vit_small_patch16_224")
    return dino.DinoEncoder(model, dino.dino_transform(), "vit_small_patch16_224", _rule_record(model, "dino"))


def test_dino_mean_cosine_on_fixed_embeddings(dino_enc):
    """A hand-computed answer: embeddings fixed in the shared cache, so only the formula is tested."""
    images = [read_rgb(p) for p in NEWTON[:3]]
    fixed = [np.array([1.0, 0.0, 0.0]), np.array([0.6, 0.8, 0.0]), np.array([0.0, 0.0, 1.0])]
    cache = face.EmbeddingCache()
    for image, vector in zip(images, fixed):
        cache.lookup(dino_enc.key, image, lambda _, v=vector: v)
    # cos(e0, e1) = 0.6, cos(e0, e2) = 0 -> mean 0.3
    assert dino.dino_similarity(images[0], images[1:], encoder=dino_enc, cache=cache) == pytest.approx(0.3, abs=1e-15)


def test_dino_similarity_on_portraits(dino_enc):
    one = dino.dino_similarity(NEWTON[0], [NEWTON[1]], encoder=dino_enc)
    two = dino.dino_similarity(NEWTON[0], [NEWTON[2]], encoder=dino_enc)
    assert dino.dino_similarity(NEWTON[0], NEWTON[1:3], encoder=dino_enc) == pytest.approx((one + two) / 2, abs=1e-12)
    assert dino.dino_similarity(NEWTON[0], [NEWTON[0]], encoder=dino_enc) == pytest.approx(1.0, abs=1e-9)
    assert dino_enc.embed_image(read_rgb(NEWTON[0])).shape == (384,)


def test_dinov2_checkpoint_layout_loads_into_the_224_model():
    model = dino.build_vit("vit_small_patch14_dinov2")
    official = {k: v.clone() for k, v in model.state_dict().items()}
    ramp = torch.arange(37, dtype=torch.float32)
    grid = (ramp[:, None] * 0 + 2.5).expand(37, 37)  # a constant grid stays constant under bicubic resizing
    official["pos_embed"] = torch.cat([torch.full((1, 1, 384), 7.0), grid.reshape(1, 37 * 37, 1).expand(1, -1, 384)], 1)
    official["mask_token"] = torch.zeros(1, 384)
    converted = dino.dinov2_to_224(official)
    assert "mask_token" not in converted and converted["pos_embed"].shape == (1, 257, 384)
    assert torch.all(converted["pos_embed"][:, 0] == 7.0)
    assert torch.allclose(converted["pos_embed"][:, 1:], torch.tensor(2.5), atol=1e-5)
    model.load_state_dict(converted, strict=True)


# --- face: ArcFace geometry and embedder, FaceNet, dlib ----------------------------------------------------


def test_arcface_alignment_puts_landmarks_on_the_template():
    """Landmarks placed by a known similarity transform of the template land back on it within a pixel."""
    angle, scale, shift = math.radians(15), 2.5, np.array([140.0, 90.0])
    rot = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    landmarks = face.ARCFACE_TEMPLATE.astype(np.float64) @ rot.T + shift
    image = np.zeros((500, 500, 3), np.uint8)
    for x, y in landmarks:
        image[round(y) - 3:round(y) + 4, round(x) - 3:round(x) + 4] = 255
    crop, matrix = face.align_arcface(image, landmarks)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    mapped = np.c_[landmarks, np.ones(5)] @ matrix.T
    assert np.abs(mapped - face.ARCFACE_TEMPLATE).max() < 1e-3
    for (tx, ty) in face.ARCFACE_TEMPLATE:  # the drawn dots' centroids, found in the crop
        y0, x0 = int(ty) - 4, int(tx) - 4
        patch = crop[y0:y0 + 10, x0:x0 + 10, 0].astype(np.float64)
        ys, xs = np.mgrid[y0:y0 + 10, x0:x0 + 10]
        centroid = np.array([(xs * patch).sum(), (ys * patch).sum()]) / patch.sum()
        assert np.abs(centroid - [tx, ty]).max() < 1.0


def _tiny_recognizer(path: Path, dim: int = 8) -> np.ndarray:
    """An ONNX model with ArcFace's interface (1x3x112x112 -> 1xdim): one MatMul with rule weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = rule_tensor("fc.weight", (3 * 112 * 112, dim), SEED, GAIN)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input.1"], ["flat"], axis=1), helper.make_node("MatMul", ["flat", "w"], ["out"])],
        "tiny", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, dim])], [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return weight


def test_arcface_embedding_preprocessing_known_answer(tmp_path):
    weight = _tiny_recognizer(tmp_path / "tiny.onnx")
    backend = face.ArcFaceBackend({"name": "tiny", "path": tmp_path / "tiny.onnx", "sha256": None}, None)
    image = read_rgb(NEWTON[0])
    h, w = image.shape[:2]
    points = face.ARCFACE_TEMPLATE * (min(h, w) / 160) + [w / 4, h / 4]
    box = face.FaceBox(0, 0, w, h, 1.0, tuple(map(tuple, points)))
    crop = face.align_arcface(image, points)[0]
    expected = ((crop.astype(np.float64) - 127.5) / 127.5).transpose(2, 0, 1).reshape(-1) @ weight.astype(np.float64)
    assert np.allclose(backend.embed(image, box), expected / np.linalg.norm(expected), atol=1e-5)
    with pytest.raises(TriptychError, match="landmarks"):
        backend.embed(image, face.FaceBox(0, 0, w, h, 1.0, None))


@pytest.fixture(scope="module")
def facenet_rule() -> face.FaceNetBackend:
    """Real MTCNN weights (facenet-pytorch wheel, through the registry) + rule-built InceptionResnetV1."""
    from triptych import weights

    torch.set_num_threads(1)
    model = face.build_facenet()
    record = _rule_record(model, "facenet")
    return face.FaceNetBackend(model, record, [(weights.describe(n), weights.load(n)) for n in face.MTCNN_WEIGHTS])


def test_facenet_detects_crops_and_embeds_a_portrait(facenet_rule):
    image = read_rgb(NEWTON[0])
    box = face.detect_largest_face(image, facenet_rule)
    assert box.landmarks is not None and len(box.landmarks) == 5 and box.width > 50
    crops = face.face_crops(image, facenet_rule)
    assert len(crops) == 1 and crops[0].shape == (160, 160, 3) and crops[0].dtype == np.uint8
    embedding = facenet_rule.embed(image, box)
    assert embedding.shape == (512,) and np.linalg.norm(embedding) == pytest.approx(1.0)
    assert [w["name"] for w in facenet_rule.weights][1:] == list(face.MTCNN_WEIGHTS)
    same = face_sim.face_similarity_facenet(NEWTON[0], [NEWTON[0]], backend=facenet_rule)
    assert same == pytest.approx(1.0, abs=1e-9)
    assert face_sim.face_distance_arcface(NEWTON[0], [NEWTON[0]], backend=facenet_rule) == pytest.approx(0.0, abs=1e-9)


def test_no_face_is_a_recorded_error_not_zero(facenet_rule):
    blank = np.full((240, 320, 3), 127, np.uint8)
    with pytest.raises(face.NoFaceError, match="no face found") as info:
        face.face_crops(blank, facenet_rule, name="blank.png")
    assert isinstance(info.value, InputError) and "blank.png" in info.value.message
    with pytest.raises(face.NoFaceError):
        face_sim.face_similarity_facenet(blank, [NEWTON[0]], backend=facenet_rule)


def test_dlib_face_crops_are_150px_chips():
    pytest.importorskip("dlib")
    crops = face.face_crops(NEWTON[0], "dlib")
    assert len(crops) == 1 and crops[0].shape == (150, 150, 3) and crops[0].dtype == np.uint8


# --- FID and KID -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fid_rule() -> fid.FidNetwork:
    torch.set_num_threads(1)
    model = fid.FidInception()
    return fid.FidNetwork(model.eval(), _rule_record(model.net, "inception"))


def test_clean_resize_keeps_a_constant_and_matches_pil_float_bicubic():
    from PIL import Image

    flat = np.full((37, 53, 3), 200, np.uint8)
    assert np.array_equal(fid.clean_resize(flat), np.full((299, 299, 3), 200, np.float32))
    image = read_rgb(NEWTON[0])
    out = fid.clean_resize(image)
    green = np.asarray(Image.fromarray(image[:, :, 1].astype(np.float32)).resize((299, 299), Image.Resampling.BICUBIC))
    assert out.dtype == np.float32 and np.array_equal(out[:, :, 1], green.clip(0, 255))
    assert not np.array_equal(out, out.round())  # not re-quantised to uint8


def test_fid_inception_equals_pytorch_fid_inceptionv3(fid_rule, tmp_path, monkeypatch):
    """pytorch-fid's own InceptionV3 (it reads the FID weights file from the torch hub cache, here the rule's
    weights) gives the same pool3 features for the same input."""
    from pytorch_fid.inception import FID_WEIGHTS_URL, InceptionV3

    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(fid_rule.model.net.state_dict(), checkpoints / FID_WEIGHTS_URL.rsplit("/", 1)[1])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = InceptionV3([3], resize_input=False, normalize_input=True).eval()
    x = torch.from_numpy(fid.clean_resize(read_rgb(NEWTON[0])) / np.float32(255)).permute(2, 0, 1)[None]
    with torch.no_grad():
        ours, theirs = fid_rule.model(x), reference(x)[0].flatten(1)
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-5)


def test_fid_clean_is_the_frechet_core_on_clean_features(fid_rule):
    """Clean features of real images, then the Fréchet core (checked against scipy on small features, since
    scipy's sqrtm of a 2048x2048 product takes minutes on two shared cores)."""
    features = fid.inception_features(NEWTON[:2], fid_rule)
    assert features.shape == (2, 2048) and features.dtype == np.float32
    assert np.array_equal(features[1], fid_rule.features(read_rgb(NEWTON[1])))
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(30, 8)).astype(np.float32), rng.normal(0.5, 1.2, size=(25, 8)).astype(np.float32)
    result = fid.fid_from_features(real, fake, {"name": "x"})
    core = frechet_distance(real, fake)
    assert result.value == core.value and result.extras()["reference_value"] is None
    assert result.value == pytest.approx(core.reference_value, rel=1e-6)  # eigh trace vs scipy sqrtm
    assert result.count == 25 and result.extras()["rank_real"] == 8


def test_kid_matches_torchmetrics_on_the_same_features():
    from torchmetrics.image.kid import KernelInceptionDistance, poly_mmd

    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(50, 16)), rng.normal(0.3, 1.0, size=(40, 16))
    assert kid.poly_mmd2(real[:20], fake[:20]) == pytest.approx(
        poly_mmd(torch.from_numpy(real[:20]), torch.from_numpy(fake[:20])).item(), rel=1e-12)

    subsets, size = 6, 20
    metric = KernelInceptionDistance(feature=torch.nn.Identity(), subsets=subsets, subset_size=size)
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    torch.manual_seed(11)
    tm_mean, tm_std = metric.compute()
    torch.manual_seed(11)  # torchmetrics draws randperm(n_real) then randperm(n_fake) per subset
    indices = [(torch.randperm(50)[:size].numpy(), torch.randperm(40)[:size].numpy()) for _ in range(subsets)]
    ours = kid.kid_from_features(real, fake, subsets=subsets, subset_size=size, indices=indices)
    assert ours.value == pytest.approx(tm_mean.item(), rel=1e-10, abs=1e-12)
    assert ours.extras()["std"] == pytest.approx(tm_std.item(), rel=1e-8)
    assert ours.extras()["subset_size"] == size and ours.extras()["subsets"] == subsets

    drawn = kid.kid_from_features(real, fake, subsets=4, subset_size=1000, seed=5)
    assert drawn.extras()["subset_size"] == 40 and drawn.extras()["seed"] == 5  # min(1000, 50, 40), recorded
    assert drawn.value == kid.kid_from_features(real, fake, subsets=4, subset_size=1000, seed=5).value


# --- measure kinds ---------------------------------------------------------------------------------------------


def _measurement(metric: str, variant: str, pred: Path, gt: Path):
    from triptych.measure import MeasureInputs, Measurement

    spec = registry().metric(metric)
    return Measurement(spec, spec.variant(variant), MeasureInputs(pred, gt))


def test_text_image_kind_reads_prompts_per_folder(clip_enc, tmp_path):
    from triptych.measure_kinds import text_image

    pred = tmp_path / "pred"
    for rel in ("newton/00_a/0.png", "newton/00_a/1.png", "newton/01_b/0.png"):
        (pred / rel).parent.mkdir(parents=True, exist_ok=True)
        (pred / rel).write_bytes(NEWTON[2].read_bytes())
    prompts = tmp_path / "prompts.json"
    prompts.write_text('{"newton/00_a": "a man", "newton/01_b/0": "a man in the snow"}')
    m = _measurement("clip_t", "dreambooth", pred, prompts)
    text_image.run(m, functools.partial(clip_score.clip_t, encoder=clip_enc))
    assert m.extras["prompts"] == {"newton/00_a/0": "a man", "newton/00_a/1": "a man",
                                   "newton/01_b/0": "a man in the snow"}
    values = dict(m.per_sample)
    assert values["newton/00_a/0"] == values["newton/00_a/1"] == pytest.approx(
        clip_score.clip_t(NEWTON[2], "a man", encoder=clip_enc), abs=1e-12)
    prompts.write_text('{"newton/00_a": "a man"}')
    with pytest.raises(InputError, match="no prompt for image 'newton/01_b/0'"):
        text_image.run(_measurement("clip_t", "dreambooth", pred, prompts), functools.partial(clip_score.clip_t,
                                                                                               encoder=clip_enc))


def test_image_set_kind_runs_kid(fid_rule, tmp_path):
    from triptych.measure_kinds import image_set

    m = _measurement("kid", "clean", PORTRAITS / "newton_man", PORTRAITS / "scarletthead_woman")
    image_set.check(m, None)
    image_set.run(m, functools.partial(kid.kid_clean, network=fid_rule))
    assert m.aggregate.count == 4 and m.extras["subset_size"] == 4 and m.extras["n_real"] == 4
    assert math.isfinite(m.aggregate.compute())
    one = tmp_path / "one"
    one.mkdir()
    (one / "a.png").write_bytes(NEWTON[2].read_bytes())
    with pytest.raises(InputError, match="at least two images"):
        image_set.check(_measurement("fid", "clean", one, PORTRAITS / "newton_man"), None)


# --- missing weights ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("load, entry", [
    (lambda: clip_score.clip_encoder("clip_vit_b32_openai"), "clip_vit_b32_openai"),
    (lambda: dino.dino_encoder("dino_vits16"), "dino_vits16"),
    (lambda: dino.dino_encoder("dinov2_vits14"), "dinov2_vits14"),
    (fid.fid_network, "inception_fid"),
    (face.arcface_backend, "arcface_w600k_r50"),
    (face.facenet_backend, "facenet_vggface2"),
    (lambda: preference.hps_encoder("hps_v2_1"), "hps_v2_1"),
    (lambda: preference.hps_encoder("hps_v2_0"), "hps_v2_0"),
    (lambda: preference.pickscore_encoder("pickscore_v1"), "pickscore_v1"),
    (lambda: image_reward.image_reward_scorer("image_reward_v1"), "image_reward_v1"),
])
def test_missing_weights_name_file_url_and_import_command(load, entry, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path))
    monkeypatch.setenv("TRIPTYCH_OFFLINE", "1")
    spec = get_spec(entry)
    with pytest.raises(MissingWeightsError) as info:
        load()
    text = info.value.message
    assert spec.filename in text and spec.urls[0] in text and f"triptych weights import {entry} PATH" in text


def test_measure_cli_reports_missing_clip_weights(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path))
    monkeypatch.setenv("TRIPTYCH_OFFLINE", "1")
    prompts = tmp_path / "prompt.txt"
    prompts.write_text("a photo of a man\n")
    code, out, err = run_cli("measure", "clip_t", "--variant", "dreambooth", "--pred", NEWTON[0], "--gt", prompts,
                             "--json")
    assert code != 0 and "ViT-B-32.pt" in err and "triptych weights import clip_vit_b32_openai" in err

