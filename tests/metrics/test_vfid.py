"""I3D features and VFID against the E2FGVI fixture (shared/fixtures/inpainting, tennis).

Every expected number and tolerance is read from the fixture (expected.json, features.npz, i3d_keys.json).
The I3D runs on CPU once per clip per session (module-scoped fixtures): about 2 s per 6-frame clip on 2
cores; scipy's sqrtm of a 1024x1024 product costs 10 to 30 s, so each VFID is computed once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from triptych.errors import InputError, TriptychError
from triptych.media import read_rgb
from triptych.measure_kinds.video_set import clip_pairs, clip_starts, pair_videos
from triptych.metrics import frechet
from triptych.metrics.frechet import frechet_distance, frechet_distance_lowrank, frechet_distance_reference
from triptych.metrics.i3d import build_i3d, i3d_features
from triptych.metrics import vfid as vfid_module
from triptych.metrics.vfid import vfid, vfid_from_features
from triptych.weights_rule import apply_weights_rule, state_sha256


# --- fixtures -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tennis(fixtures_dir: Path) -> Path:
    return fixtures_dir / "inpainting/tennis"


@pytest.fixture(scope="module")
def npz(tennis: Path) -> dict[str, np.ndarray]:
    with np.load(tennis / "features.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def rule(inpainting_expected: dict):
    """The fixture's I3D: the weights rule with the fixture's seed and gain; (model, hash at load)."""
    spec = inpainting_expected["inputs"]["i3d_weights"]
    model = build_i3d()
    return model, apply_weights_rule(model, seed=spec["seed"], gain=spec["gain"])


@pytest.fixture(scope="module")
def frames(tennis: Path) -> dict[str, np.ndarray]:
    return {side: np.stack([read_rgb(p) for p in sorted((tennis / side).glob("*.png"))]) for side in ("gt", "pred")}


@pytest.fixture(scope="module")
def features24(rule, frames) -> dict[str, np.ndarray]:
    return {side: i3d_features(clip, rule[0]) for side, clip in frames.items()}


@pytest.fixture(scope="module")
def clips6(rule, tennis):
    """VFID of the primary set (4 non-overlapping 6-frame clips) through the video_set kind's clip cutting."""
    pairs = clip_pairs(pair_videos(tennis / "pred", tennis / "gt"), 6, 6)
    return vfid(pairs, batch_stats=True, model=rule[0], record={"state_sha256": rule[1]})


@pytest.fixture(scope="module")
def npz_vfid6(npz):
    return frechet_distance(npz["gt_clips6"], npz["pred_clips6"])


def _feature_tol(expected: dict, reference: np.ndarray) -> float:
    return expected["tolerances"]["i3d_feature_rel"] * float(np.abs(reference).max())


# --- the network ----------------------------------------------------------------------------------------------

def test_state_dict_matches_the_released_layout(fixtures_dir):
    keys = json.loads((fixtures_dir / "inpainting/i3d_keys.json").read_text())
    state = build_i3d().state_dict()
    assert [e["key"] for e in keys["keys"]] == list(state)
    assert len(state) == keys["num_state_dict_entries"]
    for entry in keys["keys"]:
        tensor = state[entry["key"]]
        assert list(tensor.shape) == entry["shape"] and str(tensor.dtype) == f"torch.{entry['dtype']}", entry["key"]


def test_rule_weights_hash(rule, inpainting_expected):
    assert rule[1] == inpainting_expected["inputs"]["i3d_weights"]["state_sha256"]


def test_features_of_the_24_frame_clips(features24, npz, inpainting_expected):
    for side in ("gt", "pred"):
        ref = np.asarray(inpainting_expected["i3d_features"][side], dtype=np.float32)
        np.testing.assert_array_equal(ref, npz[side])
        assert features24[side].dtype == np.float32 and features24[side].shape == ref.shape
        assert np.abs(features24[side] - ref).max() <= _feature_tol(inpainting_expected, ref), side


def test_features_of_the_6_frame_clips(clips6, npz, inpainting_expected):
    assert clips6.clip_ids == ("gt/00000-00005", "gt/00006-00011", "gt/00012-00017", "gt/00018-00023")
    for got, key in ((clips6.real_features, "gt_clips6"), (clips6.fake_features, "pred_clips6")):
        assert np.abs(got - npz[key]).max() <= _feature_tol(inpainting_expected, npz[key]), key


def test_forward_passes_never_change_the_model_or_later_outputs(rule, clips6, features24, frames,
                                                                 inpainting_expected):
    model, loaded_hash = rule
    assert state_sha256(model.state_dict()) == loaded_hash  # no BN running statistic was updated
    # eval-bn (running statistics 0 / 1: nothing normalised) gives the diagnostic features, not the reference's
    diag = inpainting_expected["diagnostics_not_reference"]
    eval_gt = i3d_features(frames["gt"], model, batch_stats=False)
    assert model.training  # the caller's mode is restored
    assert float(eval_gt.mean()) == pytest.approx(diag["i3d_eval_mode_gt24_mean"], rel=1e-3)
    assert float(np.abs(eval_gt - features24["gt"]).max()) == pytest.approx(
        diag["i3d_eval_mode_gt24_max_abs_diff_vs_reference"], rel=1e-3)
    again = i3d_features(frames["gt"][:6], model)  # after train and eval passes: bit-identical
    np.testing.assert_array_equal(again, clips6.real_features[0])
    assert state_sha256(model.state_dict()) == loaded_hash


# --- Fréchet distance -----------------------------------------------------------------------------------------

def test_vfid_from_the_fixture_features(npz_vfid6, inpainting_expected, npz):
    want = inpainting_expected["vfid"]["clips6_nonoverlap"]
    # the eigen-decomposition value and the reference's own scipy value both equal the fixture's reference
    assert npz_vfid6.value == pytest.approx(want["reference_calculate_vfid"]["value"], rel=1e-6)
    assert npz_vfid6.reference_value == pytest.approx(want["reference_calculate_vfid"]["value"], rel=1e-9)
    assert npz_vfid6.reference_error is None
    assert frechet_distance_reference(npz["gt_clips6"], npz["pred_clips6"]) == npz_vfid6.reference_value
    assert npz_vfid6.exact_lowrank == pytest.approx(want["exact_lowrank_float64"]["value"], rel=1e-6)
    assert npz_vfid6.trace_covmean_exact == pytest.approx(want["exact_lowrank_float64"]["trace_sqrt_s1s2"], rel=1e-6)
    n = npz["gt_clips6"].shape[0]
    assert (npz_vfid6.rank_real, npz_vfid6.rank_fake) == (n - 1, n - 1)
    assert not npz_vfid6.sqrtm_offset_used
    assert npz_vfid6.sq_mean_diff == pytest.approx(want["components"]["sq_mean_diff_float32_as_reference"], rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eigh_square_root_equals_scipy_on_full_rank_sets(seed):
    rng = np.random.default_rng(seed)
    dim = 64
    mix = rng.normal(size=(dim, dim))
    real = rng.normal(size=(400, dim)) @ mix
    fake = rng.normal(size=(300, dim)) @ (mix + 0.3 * rng.normal(size=(dim, dim))) + 0.5
    result = frechet_distance(real, fake)
    assert (result.rank_real, result.rank_fake) == (dim, dim)
    assert result.value == pytest.approx(result.reference_value, rel=1e-6)
    assert result.value == pytest.approx(result.exact_lowrank, rel=1e-6)


def test_singular_set_where_the_reference_crashes_still_has_a_value():
    """Two videos in 1024 dimensions (rank-1 covariances): scipy's sqrtm of the singular product is where
    E2FGVI's calculate_frechet_distance raises 'Imaginary component'; the metric returns the exact value."""
    rng = np.random.default_rng(3)
    real, fake = rng.random(size=(2, 1024)).astype(np.float32), rng.random(size=(2, 1024)).astype(np.float32)
    result = frechet_distance(real, fake)
    assert (result.rank_real, result.rank_fake) == (1, 1)
    assert np.isfinite(result.value)
    assert result.value == pytest.approx(result.exact_lowrank, rel=1e-6)
    # by hand: with two vectors each, S = d d^T / 2 (d the difference of the pair), tr sqrt(S1 S2) = |d1.d2| / 2
    d1, d2 = (real[0] - real[1]).astype(np.float64), (fake[0] - fake[1]).astype(np.float64)
    mean_diff = real.mean(axis=0) - fake.mean(axis=0)
    by_hand = float(mean_diff @ mean_diff) + (d1 @ d1 + d2 @ d2) / 2 - abs(d1 @ d2)
    assert result.value == pytest.approx(by_hand, rel=1e-6)


def test_vfid_end_to_end_primary_set(clips6, inpainting_expected):
    want = inpainting_expected["vfid"]["clips6_nonoverlap"]
    rel = inpainting_expected["tolerances"]["vfid_rel"]
    assert clips6.value == pytest.approx(want["reference_calculate_vfid"]["value"], rel=rel)
    assert clips6.frechet.exact_lowrank == pytest.approx(want["exact_lowrank_float64"]["value"], rel=rel)
    extras = clips6.extras()
    assert extras["rank_real"] == extras["rank_fake"] == len(clips6.clip_ids) - 1
    assert extras["exact_lowrank_rel_diff"] < rel


@pytest.mark.slow
def test_vfid_secondary_set_16_2(rule, tennis, npz, inpainting_expected):
    want = inpainting_expected["vfid"]["clips16_stride2"]
    rel = inpainting_expected["tolerances"]["vfid_rel"]
    from_npz = vfid_from_features(npz["gt_clips16"], npz["pred_clips16"])
    assert from_npz.value == pytest.approx(want["reference_calculate_vfid"]["value"], rel=1e-6)
    assert from_npz.exact_lowrank == pytest.approx(want["exact_lowrank_float64"]["value"], rel=1e-6)
    (name, frame_pairs), = pair_videos(tennis / "pred", tennis / "gt")
    n_frames = want["clips"][-1][1] + 1  # the fixture's windows: the video cut after the last one
    assert clip_starts(n_frames, 16, 2) == [start for start, _ in want["clips"]]
    result = vfid(clip_pairs([(name, frame_pairs[:n_frames])], 16, 2), batch_stats=True, model=rule[0])
    for got, key in ((result.real_features, "gt_clips16"), (result.fake_features, "pred_clips16")):
        assert np.abs(got - npz[key]).max() <= _feature_tol(inpainting_expected, npz[key]), key
    assert result.value == pytest.approx(want["reference_calculate_vfid"]["value"], rel=rel)


def test_fewer_than_two_videos_is_an_error(npz):
    with pytest.raises(InputError, match="at least two videos"):
        frechet_distance_reference(npz["gt_clips6"][:1], npz["pred_clips6"][:1])
    with pytest.raises(InputError, match="at least two videos"):
        frechet_distance_lowrank(npz["gt_clips6"][:1], npz["pred_clips6"][:1])


def test_imaginary_sqrtm_is_recorded_not_raised(monkeypatch):
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(3, 16)).astype(np.float32), rng.normal(size=(3, 16)).astype(np.float32)
    honest = frechet_distance(real, fake)
    # what the reference's sqrtm returns on a badly singular product: a large imaginary diagonal
    monkeypatch.setattr(frechet, "_sqrtm", lambda m: np.eye(m.shape[0]) * (0.1 + 0.01j))
    result = frechet_distance(real, fake)
    assert result.value == honest.value and result.reference_value is None
    assert "Imaginary component" in result.reference_error
    with pytest.raises(TriptychError, match="Imaginary component") as info:
        frechet_distance_reference(real, fake)
    assert "ranks 2 and 2" in info.value.message and repr(honest.value) in info.value.message


def test_non_finite_sqrtm_takes_the_reference_offset_fallback(monkeypatch):
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    calls = []
    original = frechet._sqrtm

    def sqrtm(m):
        calls.append(m)
        return np.full_like(m, np.nan) if len(calls) == 1 else original(m)

    monkeypatch.setattr(frechet, "_sqrtm", sqrtm)
    result = frechet_distance(real, fake)
    assert result.sqrtm_offset_used and len(calls) == 2
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    np.testing.assert_allclose(calls[1], (s1 + 1e-6 * np.eye(8)) @ (s2 + 1e-6 * np.eye(8)))


def test_a_clip_that_would_not_fit_is_refused_before_compute(rule, tennis, monkeypatch):
    pairs = clip_pairs(pair_videos(tennis / "pred", tennis / "gt"), 24, 24)
    need = vfid_module.i3d_memory_bytes(24, 240, 432)
    monkeypatch.setenv(vfid_module.MEMORY_ENV, str(need - 1))
    with pytest.raises(InputError, match=r"ground-truth clip .* has 24 frames of 432x240") as info:
        vfid(pairs, batch_stats=True, model=rule[0], cache=None)
    assert "--clip-len" in info.value.fix and vfid_module.MEMORY_ENV in info.value.fix
    monkeypatch.setenv(vfid_module.MEMORY_ENV, str(need))
    assert vfid_module.available_memory_bytes("cpu") == need  # the estimate itself is what the limit checks


# --- triptych measure vfid ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rule_files(rule, tmp_path_factory) -> dict[str, Path]:
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("i3d_rule")
    save_file(rule[0].state_dict(), str(root / "rule.safetensors"))
    return {"safetensors": root / "rule.safetensors"}


@pytest.fixture()
def empty_home(tmp_path, monkeypatch) -> Path:
    """A fresh TRIPTYCH_HOME (no weights in the cache), offline."""
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIPTYCH_OFFLINE", "1")
    return tmp_path / "home"


def test_measure_vfid_cli_with_user_weights(run_cli, tennis, rule_files, empty_home, inpainting_expected):
    code, out, err = run_cli("measure", "vfid", "--variant", "e2fgvi", "--pred", tennis / "pred", "--gt",
                             tennis / "gt", "--weights", rule_files["safetensors"], "--clip-len", 6,
                             "--clip-stride", 6, "--json")
    assert code == 0, err
    doc = json.loads(out)
    want = inpainting_expected["vfid"]["clips6_nonoverlap"]
    rel = inpainting_expected["tolerances"]["vfid_rel"]
    sha8 = hashlib.sha256(rule_files["safetensors"].read_bytes()).hexdigest()[:8]
    # a user's I3D never pairs with published rows: its variant carries the file's sha256 prefix
    assert (doc["metric"], doc["metric_variant"], doc["metric_version"]) == ("vfid", f"e2fgvi+user-{sha8}", 2)
    assert doc["aggregate"]["value"] == pytest.approx(want["reference_calculate_vfid"]["value"], rel=rel)
    n = len(want["clips"])
    assert doc["aggregate"]["n"] == n and doc["aggregate"]["reduction"].startswith(f"frechet distance over {n} videos")
    assert doc["per_sample"] == []
    assert doc["extras"]["exact_lowrank"] == pytest.approx(want["exact_lowrank_float64"]["value"], rel=rel)
    assert doc["extras"]["rank_real"] == doc["extras"]["rank_fake"] == n - 1
    (weights,) = doc["weights"]
    assert weights["sha256"] == hashlib.sha256(rule_files["safetensors"].read_bytes()).hexdigest()
    assert weights["user_supplied"] is True and weights["registered"] is False
    assert weights["state_sha256"] == inpainting_expected["inputs"]["i3d_weights"]["state_sha256"]
    assert doc["inputs"]["clip_len"] == "6" and doc["inputs"]["weights"] == str(rule_files["safetensors"])


@pytest.mark.parametrize("with_weights", [True, False])
def test_measure_vfid_input_errors_come_before_weights(run_cli, tennis, tmp_path, rule_files, empty_home,
                                                       with_weights):
    w = ("--weights", rule_files["safetensors"]) if with_weights else ()
    code, _, err = run_cli("measure", "vfid", "--variant", "e2fgvi", "--pred", tennis / "pred", "--gt",
                           tennis / "gt", *w)
    assert code == 2 and "needs at least two videos" in err  # one video, no clips
    for side, names in (("pred", ("a", "b")), ("gt", ("a", "c"))):
        for name in names:
            (tmp_path / side / name).mkdir(parents=True)
            (tmp_path / side / name / "00000.png").symlink_to(tennis / "gt/00000.png")
    code, _, err = run_cli("measure", "vfid", "--variant", "e2fgvi", "--pred", tmp_path / "pred", "--gt",
                           tmp_path / "gt", *w)
    assert code == 2 and "video names differ" in err and "'c'" in err and "'b'" in err
    code, _, err = run_cli("measure", "vfid", "--pred", tennis / "pred", "--gt", tennis / "gt", *w)
    assert code == 2 and "no default" in err and "eval-bn" in err


def test_measure_vfid_without_weights_surfaces_the_missing_file(run_cli, tennis, empty_home):
    code, out, err = run_cli("measure", "vfid", "--variant", "e2fgvi", "--pred", tennis / "pred", "--gt",
                             tennis / "gt", "--clip-len", 6, "--json")
    assert code == 2 and out == ""
    assert "weights 'i3d_rgb_imagenet' are not in the cache" in err and "triptych weights import" in err


def test_measure_vfid_clips_10_stride_1_is_devils_vfid_clips(run_cli, tmp_path, empty_home):
    """DEVIL's clip VFID (MichiganCOG/video-inpainting-evaluation @ d339a12 vfid_clips_computer.py with
    src/fid/util.py extract_video_clip_features): InceptionI3d in eval(), every 10-frame window of each video
    at stride 1 (frames uint8 / 255 stacked as 1 x 3 x 10 x H x W), its 'Logits' endpoint feature (Mixed_5c
    averaged over T, H, W), the features of all clips pooled, np.mean / np.cov and pytorch-fid's
    calculate_frechet_distance (the function DEVIL vendors in src/fid). Written out here window by window on
    videos of 12, 11 and 10 frames (6 clips a side) with a weights-rule I3D; only the I3D forward is shared."""
    import torch
    from PIL import Image
    from pytorch_fid.fid_score import calculate_frechet_distance

    torch.set_num_threads(1)
    model = build_i3d()
    apply_weights_rule(model, 5, 1.0)
    model.eval()
    trunk = tmp_path / "i3d.pt"
    torch.save(model.state_dict(), trunk)
    rng = np.random.default_rng(11)
    feats: dict[str, list[np.ndarray]] = {"gt": [], "pred": []}
    for video, n in (("a", 12), ("b", 11), ("c", 10)):
        gt = rng.integers(0, 256, (n, 40, 48, 3), dtype=np.uint8)
        pred = np.clip(gt.astype(int) + rng.integers(-40, 41, gt.shape), 0, 255).astype(np.uint8)
        for side, frames in (("gt", gt), ("pred", pred)):
            (tmp_path / side / video).mkdir(parents=True)
            for t, frame in enumerate(frames):
                Image.fromarray(frame).save(tmp_path / side / video / f"{t:05d}.png")
            convert = lambda f: torch.from_numpy(f.astype(np.float32).transpose(2, 0, 1) / 255)[None]  # noqa: E731
            window = [convert(f) for f in frames[:10]]
            for t in range(max(1, n - 10 + 1)):
                with torch.no_grad():
                    x = torch.stack(window, dim=2)  # 1 x 3 x 10 x H x W
                    feats[side].append(model(x)[0].numpy().astype(np.float64))
                if t + 10 < n:
                    window = window[1:] + [convert(frames[t + 10])]
    real, fake = np.stack(feats["gt"]), np.stack(feats["pred"])
    assert len(real) == len(fake) == 6
    want = calculate_frechet_distance(real.mean(0), np.cov(real, rowvar=False),
                                      fake.mean(0), np.cov(fake, rowvar=False))
    code, out, err = run_cli("measure", "vfid", "--variant", "eval-bn", "--pred", tmp_path / "pred", "--gt",
                             tmp_path / "gt", "--weights", trunk, "--clip-len", 10, "--clip-stride", 1, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["aggregate"]["n"] == 6 and want > 0
    assert doc["aggregate"]["value"] == pytest.approx(want, rel=1e-5)
