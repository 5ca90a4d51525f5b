"""E_warp (Lai et al. 2018) against the golden fixture ``fixtures/ewarp/tennis``.

Every expected number comes from the fixture's ``expected.json`` / ``diagnostics.json``, and the
tolerance from its README. Nothing is copied into this file.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from triptych.errors import InputError, TriptychError
from triptych.media import read_mask, read_rgb
from triptych.metrics import ewarp
from triptych.metrics.convert import to_unit_float32
from triptych.registry import registry
from triptych.vision import flow


# --------------------------------------------------------------------------------------------------
# Fixture data


@pytest.fixture(scope="module")
def tennis(fixtures_dir: Path) -> Path:
    return fixtures_dir / "ewarp/tennis"


@pytest.fixture(scope="module")
def expected(tennis: Path) -> dict:
    return json.loads((tennis / "expected.json").read_text())


@pytest.fixture(scope="module")
def diagnostics(tennis: Path) -> dict:
    return json.loads((tennis / "diagnostics.json").read_text())


@pytest.fixture(scope="module")
def rel_tol(tennis: Path) -> float:
    """The README's suggested tolerance for E_warp per video and per pair (relative)."""
    text = (tennis / "README.md").read_text()
    match = re.search(r"E_warp per video and per pair:\s*relative\s*([0-9.eE+-]+)", text)
    assert match, "the fixture README no longer states the E_warp tolerance"
    return float(match.group(1))


def _frames(folder: Path) -> list[np.ndarray]:
    return [read_rgb(p) for p in sorted(folder.glob("*.png"))]


@pytest.fixture(scope="module")
def videos(tennis: Path, expected: dict) -> dict[str, list[np.ndarray]]:
    return {name: _frames(tennis / result["frames_dir"]) for name, result in expected["results"].items()}


@pytest.fixture(scope="module")
def flow_pairs(tennis: Path, expected: dict) -> list[flow.FlowPair]:
    shape = (expected["height"], expected["width"])
    return list(flow.file_flow_pairs(tennis / "flows", expected["num_frames"], shape))


@pytest.fixture(scope="module")
def masks(flow_pairs) -> list[np.ndarray]:
    return [flow.occlusion_mask(p.forward, p.backward) for p in flow_pairs]


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


# --------------------------------------------------------------------------------------------------
# The fixture, through the pure functions


def test_occlusion_masks_match_the_fixture_exactly(tennis, expected, masks):
    assert len(masks) == expected["num_pairs"]
    for pair, mask in zip(expected["pairs"], masks):
        reference = read_mask(tennis / pair["occlusion"])
        assert mask.shape == reference.shape
        assert int((mask != reference).sum()) == 0, f"pair {pair['pair']}"
        assert int(mask.sum()) == pair["occluded_pixels"]


@pytest.mark.parametrize("video", ["gt", "perturbed"])
def test_per_pair_and_per_video_ewarp_match_the_reference(video, expected, diagnostics, videos, flow_pairs,
                                                           rel_tol):
    result = ewarp.video_ewarp(videos[video], flow_pairs)
    want = expected["results"][video]
    assert [p.n for p in result.pairs] == [int(n) for n in want["per_pair_N"]]
    for got, ref in zip(result.per_pair, want["per_pair_err"], strict=True):
        assert _rel(got, ref) <= rel_tol
    for got, ref in zip([p.sse for p in result.pairs], want["per_pair_sse"], strict=True):
        assert _rel(got, ref) <= rel_tol
    assert _rel(result.value, want["E_warp"]) <= rel_tol
    assert result.occluded_pixels == [p["occluded_pixels"] for p in expected["pairs"]]
    for name in ("independent_with_stored_occ", "independent_with_own_float64_occ"):
        assert _rel(result.value, diagnostics[video][name]) <= rel_tol
    # values are raw: x100 is only the papers' printing
    assert _rel(result.value * 100, want["E_warp_x100"]) <= rel_tol


def test_dataset_value_is_the_mean_over_videos(expected, videos, flow_pairs, rel_tol):
    values = [ewarp.video_ewarp(videos[v], flow_pairs).value for v in expected["results"]]
    want = float(np.mean([r["E_warp"] for r in expected["results"].values()]))
    assert _rel(ewarp.dataset_ewarp(values), want) <= rel_tol
    with pytest.raises(TriptychError, match="no video"):
        ewarp.dataset_ewarp([])


# --------------------------------------------------------------------------------------------------
# The common mistakes of diagnostics.json: each is rebuilt from the pure functions to show what it is,
# and none is what ewarp computes.


def _zero_padded_warp(image: np.ndarray, flow_field: np.ndarray) -> np.ndarray:
    """grid_sample(padding_mode='zeros'): a 1-px zero border, then the border-clamped warp."""
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)))
    return flow.warp_backward(padded, np.pad(flow_field, ((1, 1), (1, 1), (0, 0)), mode="edge"))[1:-1, 1:-1]


def _wrong(name: str, frames: list[np.ndarray], pairs: list[flow.FlowPair], masks: list[np.ndarray]) -> float:
    values = []
    for t, (pair, mask) in enumerate(zip(pairs, masks)):
        if name == "WRONG_no_occlusion_mask":
            value = ewarp.pair_error(frames[t], frames[t + 1], pair.forward, np.zeros_like(mask)).value
        elif name == "WRONG_zeros_padding":
            warped = _zero_padded_warp(to_unit_float32(frames[t + 1]), pair.forward)
            value = ewarp.masked_error(warped, frames[t], mask).value
        elif name == "WRONG_occlusion_args_in_signature_order":
            value = ewarp.pair_error(frames[t], frames[t + 1], pair.forward,
                                     flow.occlusion_mask(pair.backward, pair.forward)).value
        elif name == "WRONG_mask1_only":
            value = ewarp.pair_error(frames[t], frames[t + 1], pair.forward,
                                     flow.forward_backward_mask(pair.forward, pair.backward)).value
        elif name == "WRONG_divide_by_pixels_not_pixels_x_3":
            error = ewarp.pair_error(frames[t], frames[t + 1], pair.forward, mask)
            value = error.sse / (error.n / 3)
        else:
            raise AssertionError(f"diagnostics.json lists a mistake this test does not know: {name}")
        values.append(value)
    return ewarp.mean_float32(values)


@pytest.mark.parametrize("video", ["gt", "perturbed"])
def test_common_mistakes_are_recognised_and_not_produced(video, expected, diagnostics, videos, flow_pairs,
                                                          masks, rel_tol):
    ours = ewarp.video_ewarp(videos[video], flow_pairs).value
    mistakes = {k: v for k, v in diagnostics[video].items() if k.startswith("WRONG_")}
    assert mistakes, "diagnostics.json lists no mistakes"
    for name, wrong_value in mistakes.items():
        rebuilt = _wrong(name, videos[video], flow_pairs, masks)
        assert _rel(rebuilt, wrong_value) <= rel_tol, f"{name}: the mistake is not what this test thinks"
        assert _rel(ours, wrong_value) > 100 * rel_tol, f"ewarp computes {name}"
        assert _rel(ours, expected["results"][video]["E_warp"]) <= rel_tol


# --------------------------------------------------------------------------------------------------
# Warping and error, on small hand-made inputs


def test_warp_is_bilinear_with_integer_centres_and_edge_clamping():
    image = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    shift = np.zeros((3, 4, 2), np.float32)
    shift[..., 0] = 0.5  # half a pixel to the right
    got = flow.warp_backward(image, shift)[..., 0]
    assert got[0, 0] == pytest.approx(0.5) and got[1, 2] == pytest.approx(6.5)
    assert got[0, 3] == 3.0  # past the right edge: the edge value, not 0 and not masked
    far = np.full((3, 4, 2), -10.0, np.float32)
    assert np.all(flow.warp_backward(image, far)[..., 0] == 0.0)  # all clamp to pixel (0, 0), value 0
    far[...] = 10.0
    assert np.all(flow.warp_backward(image, far)[..., 0] == 11.0)


def test_no_visible_pixel_divides_by_all_pixels():
    frame = np.full((2, 3, 3), 10, np.uint8)
    error = ewarp.masked_error(to_unit_float32(frame) + 0.5, frame, np.ones((2, 3), bool))
    assert error.n == 2 * 3 * 3 and error.occluded == 6 and error.sse == 0.0


def test_video_needs_a_flow_pair_per_frame_pair(videos, flow_pairs):
    with pytest.raises(InputError, match="flow pair"):
        ewarp.video_ewarp(videos["gt"][:4], flow_pairs[:2])
    with pytest.raises(InputError, match="more flow pairs"):
        ewarp.video_ewarp(videos["gt"][:3], flow_pairs[:3])
    with pytest.raises(InputError, match="no frame pair"):
        ewarp.video_ewarp(videos["gt"][:1], [])


# --------------------------------------------------------------------------------------------------
# Flow files


def test_flo_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    field = rng.normal(0, 5, size=(7, 11, 2)).astype(np.float32)
    path = flow.write_flo(tmp_path / "f.flo", field)
    assert path.stat().st_size == 12 + 7 * 11 * 2 * 4
    assert path.read_bytes()[:4] == b"PIEH"
    back = flow.read_flo(path)
    assert back.dtype == np.float32 and back.shape == (7, 11, 2) and np.array_equal(back, field)
    assert np.array_equal(flow.read_flow(path), field)


def test_bad_flo_files_are_named(tmp_path):
    good = flow.write_flo(tmp_path / "good.flo", np.zeros((4, 5, 2), np.float32)).read_bytes()
    bad_magic = tmp_path / "bad_magic.flo"
    bad_magic.write_bytes(b"XXXX" + good[4:])
    with pytest.raises(InputError, match=r"bad_magic\.flo: not a Middlebury \.flo file.*202021\.25"):
        flow.read_flo(bad_magic)
    truncated = tmp_path / "truncated.flo"
    truncated.write_bytes(good[:-8])
    with pytest.raises(InputError, match=r"truncated\.flo: \.flo of 5x4 needs"):
        flow.read_flo(truncated)
    huge = tmp_path / "huge.flo"
    huge.write_bytes(good[:4] + np.array([-3, 4], "<i4").tobytes() + good[12:])
    with pytest.raises(InputError, match=r"huge\.flo: implausible \.flo size"):
        flow.read_flo(huge)
    with pytest.raises(InputError, match=r"f\.png: unsupported flow file type"):
        flow.read_flow(tmp_path / "f.png")


def test_bad_flow_shape_and_dtype_are_named(tmp_path):
    channel_first = tmp_path / "fw_00000.npy"
    np.save(channel_first, np.zeros((2, 8, 9), np.float32))
    with pytest.raises(InputError, match=r"fw_00000\.npy: flow has shape \(2, 8, 9\).*channel-first") as info:
        flow.read_npy_flow(channel_first)
    assert info.value.fix and "(H, W, 2)" in info.value.fix
    wrong_dtype = tmp_path / "bw_00000.npy"
    np.save(wrong_dtype, np.zeros((8, 9, 2), np.float64))
    with pytest.raises(InputError, match=r"bw_00000\.npy: flow has dtype float64"):
        flow.read_npy_flow(wrong_dtype)
    nan = np.zeros((8, 9, 2), np.float32)
    nan[1, 1, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(InputError, match=r"nan\.npy: flow contains NaN"):
        flow.read_npy_flow(tmp_path / "nan.npy")
    np.save(tmp_path / "fw_00000.npy", np.zeros((8, 9, 2), np.float32))
    np.save(tmp_path / "bw_00000.npy", np.zeros((8, 9, 2), np.float32))
    with pytest.raises(InputError, match=r"fw_00000\.npy: flow is 9x8 \(WxH\) but the frames are 10x8"):
        list(flow.file_flow_pairs(tmp_path, 2, (8, 10)))


def test_missing_flow_file_is_named_before_anything_is_read(tmp_path):
    for t in range(3):
        np.save(tmp_path / f"fw_{t:05d}.npy", np.zeros((4, 4, 2), np.float32))
        if t != 1:
            np.save(tmp_path / f"bw_{t:05d}.npy", np.zeros((4, 4, 2), np.float32))
    with pytest.raises(InputError, match=r"bw_00001\.npy: flow file not found") as info:
        flow.flow_files(tmp_path, 4)
    assert "fw_%05d.npy" in info.value.fix
    np.save(tmp_path / "bw_00001.npy", np.zeros((4, 4, 2), np.float32))
    with pytest.raises(InputError, match=r"beyond the last pair.*fw_00002\.npy"):
        flow.flow_files(tmp_path, 3)
    flow.write_flo(tmp_path / "fw_00000.flo", np.zeros((4, 4, 2), np.float32))
    with pytest.raises(InputError, match=r"both fw_00000\.npy and fw_00000\.flo"):
        flow.flow_files(tmp_path, 4)


# --------------------------------------------------------------------------------------------------
# The registry entry


def test_registry_entry():
    spec = registry().metric("ewarp")
    assert (spec.kind, spec.level, spec.direction, spec.unit, spec.tasks) == (
        "video_flow", "video", "lower", "", ("video_inpainting",))
    assert spec.default_variant is None and set(spec.variants) == {"files", "dis", "raft"}
    for variant in spec.variants.values():
        assert variant.version >= 1 and variant.protocol and callable(variant.load())
    assert spec.variants["raft"].weights == ("raft_large_c_t_skht_v2",)
    with pytest.raises(TriptychError, match="no default"):
        spec.variant(None)


# --------------------------------------------------------------------------------------------------
# The CLI


def test_cli_files_variant_reproduces_the_fixture(run_cli, tennis, expected, rel_tol):
    for video, want in expected["results"].items():
        code, out, err = run_cli("measure", "ewarp", "--variant", "files", "--pred", tennis / want["frames_dir"],
                                 "--gt", tennis / "frames/gt", "--flow-dir", tennis / "flows", "--json")
        assert code == 0, err
        doc = json.loads(out)
        assert (doc["metric"], doc["metric_variant"], doc["metric_version"]) == ("ewarp", "files", 1)
        assert doc["inputs"]["flow_dir"] == str(tennis / "flows")
        [row] = doc["per_sample"]
        assert row["sample_id"] == "gt"  # one folder of frames = one video, named after --gt
        assert _rel(row["value"], want["E_warp"]) <= rel_tol
        assert doc["aggregate"]["n"] == 1 and _rel(doc["aggregate"]["value"], want["E_warp"]) <= rel_tol
        for got, ref in zip(doc["extras"]["per_pair"]["gt"], want["per_pair_err"], strict=True):
            assert _rel(got, ref) <= rel_tol
        assert doc["extras"]["occluded_pixels"]["gt"] == [p["occluded_pixels"] for p in expected["pairs"]]
        assert doc["extras"]["flow"]["gt"]["backend"] == "files" and len(doc["extras"]["flow"]["gt"]["sha256"]) == 64


def _two_videos(tennis: Path, tmp_path: Path, as_flo: bool = False) -> dict[str, list[int]]:
    """pred/, gt/ and flows/ with two videos cut from the fixture; flows re-indexed from 0 per video."""
    cuts = {"a": [0, 1, 2, 3], "b": [5, 6, 7]}
    for video, frames in cuts.items():
        for side, source in (("gt", "gt"), ("pred", "perturbed")):
            (tmp_path / side / video).mkdir(parents=True)
            for frame in frames:
                shutil.copy(tennis / f"frames/{source}/{frame:05d}.png", tmp_path / side / video / f"{frame:05d}.png")
        (tmp_path / "flows" / video).mkdir(parents=True)
        for t, frame in enumerate(frames[:-1]):
            for prefix in ("fw", "bw"):
                target = tmp_path / "flows" / video / f"{prefix}_{t:05d}"
                if as_flo:
                    flow.write_flo(target.with_suffix(".flo"), np.load(tennis / f"flows/{prefix}_{frame:05d}.npy"))
                else:
                    shutil.copy(tennis / f"flows/{prefix}_{frame:05d}.npy", target.with_suffix(".npy"))
    return cuts


@pytest.mark.parametrize("as_flo", [False, True], ids=["npy", "flo"])
def test_cli_several_videos_pair_by_name_with_flows_per_video(run_cli, tennis, expected, tmp_path, rel_tol,
                                                              as_flo):
    cuts = _two_videos(tennis, tmp_path, as_flo)
    code, out, err = run_cli("measure", "ewarp", "--variant", "files", "--pred", tmp_path / "pred",
                             "--gt", tmp_path / "gt", "--flow-dir", tmp_path / "flows", "--json")
    assert code == 0, err
    doc = json.loads(out)
    per_pair = expected["results"]["perturbed"]["per_pair_err"]
    values = {}
    for row in doc["per_sample"]:
        want = float(np.mean([per_pair[f] for f in cuts[row["sample_id"]][:-1]]))
        assert _rel(row["value"], want) <= rel_tol
        values[row["sample_id"]] = row["value"]
    assert set(values) == set(cuts)
    assert doc["aggregate"]["n"] == 2
    assert _rel(doc["aggregate"]["value"], float(np.mean(list(values.values())))) <= 1e-12


def test_cli_missing_flow_file_is_named_with_the_fix(run_cli, tennis, tmp_path):
    _two_videos(tennis, tmp_path)
    (tmp_path / "flows/b/bw_00001.npy").unlink()
    code, out, err = run_cli("measure", "ewarp", "--variant", "files", "--pred", tmp_path / "pred",
                             "--gt", tmp_path / "gt", "--flow-dir", tmp_path / "flows", "--json")
    assert code == 2 and out == ""
    assert str(tmp_path / "flows/b/bw_00001.npy") in err and "fix:" in err
    shutil.rmtree(tmp_path / "flows/b")
    code, _, err = run_cli("measure", "ewarp", "--variant", "files", "--pred", tmp_path / "pred",
                           "--gt", tmp_path / "gt", "--flow-dir", tmp_path / "flows")
    assert code == 2 and "no folder b/ for video 'b'" in err and "<flow-dir>/V/" in err


def test_cli_flow_dir_is_required_for_files_and_refused_for_computed_flows(run_cli, tennis):
    base = ("measure", "ewarp", "--pred", tennis / "frames/perturbed", "--gt", tennis / "frames/gt")
    code, _, err = run_cli(*base, "--variant", "files")
    assert code == 2 and "--flow-dir was not given" in err and "fix:" in err
    code, _, err = run_cli(*base, "--variant", "dis", "--flow-dir", tennis / "flows")
    assert code == 2 and "--flow-dir is not used" in err
    code, _, err = run_cli(*base)
    assert code == 2 and "no default" in err


def test_raft_without_weights_names_the_fetch_and_import_commands(run_cli, tennis, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIPTYCH_OFFLINE", "1")
    code, out, err = run_cli("measure", "ewarp", "--variant", "raft", "--pred", tennis / "frames/perturbed",
                             "--gt", tennis / "frames/gt", "--json")
    assert code == 2 and out == ""
    assert "raft_large_c_t_skht_v2" in err and "triptych weights import raft_large_c_t_skht_v2" in err
    monkeypatch.delenv("TRIPTYCH_OFFLINE")
    code, _, err = run_cli("measure", "ewarp", "--variant", "raft", "--pred", tennis / "frames/perturbed",
                           "--gt", tennis / "frames/gt")
    assert code == 2 and "triptych weights fetch raft_large_c_t_skht_v2" in err


class _CoordinateRaft:
    """A stand-in with torchvision RAFT's call signature: its "flow" is the padded pixel grid, so the test
    sees the normalisation, the padding and the crop (real weights cannot be fetched here)."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], float, float, int]] = []

    def to(self, device):
        return self

    def __call__(self, image1, image2, num_flow_updates):
        import torch

        self.calls.append((tuple(image1.shape), float(image1.min()), float(image1.max()), num_flow_updates))
        _, _, height, width = image1.shape
        ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                                indexing="ij")
        return [torch.zeros(1, 2, height, width), torch.stack([xs, ys])[None]]


def test_raft_backend_pads_normalises_and_crops(videos):
    frames = [f[:130, :138] for f in videos["gt"][:2]]  # not multiples of 8: padded to 136 x 144
    model = _CoordinateRaft()
    [pair] = list(flow.raft_flow_pairs(frames, model=model, device="cpu"))
    assert [c[0] for c in model.calls] == [(1, 3, 136, 144)] * 2 and all(c[3] == flow.RAFT_UPDATES for c in model.calls)
    assert all(-1.0 <= c[1] < c[2] <= 1.0 for c in model.calls)  # uint8 / 255 mapped to [-1, 1]
    for field in (pair.forward, pair.backward):
        assert field.shape == (130, 138, 2) and field.dtype == np.float32
        assert field[0, 0].tolist() == [3.0, 3.0] and field[-1, -1].tolist() == [140.0, 132.0]  # even split, cropped
    with pytest.raises(InputError, match="at least 128"):
        flow.raft_flow(model, frames[0][:100], frames[1][:100])


# --------------------------------------------------------------------------------------------------
# DIS


def test_dis_backend_gives_a_plausible_ewarp(expected, videos):
    """DIS (MEDIUM) on the ground truth made the fixture's stored flows, so it lands close to them; how
    close depends on the OpenCV version (recorded in the result)."""
    for video, want in expected["results"].items():
        result = ewarp.ewarp_dis(videos[video], videos["gt"])
        assert np.isfinite(result.value) and result.value > 0
        assert result.flow["backend"] == "dis" and result.flow["preset"] == "DISOPTICAL_FLOW_PRESET_MEDIUM"
        assert result.flow["opencv"] and result.flow["params"]["PatchSize"] > 0
        distance = _rel(result.value, want["E_warp"])
        # plausible: the method that made the stored flows, maybe another OpenCV build (5.0.0: distance 1e-7)
        assert distance < 0.5, (f"E_warp {video}: dis {result.value:.9g}, stored flows {want['E_warp']:.9g} "
                                f"(OpenCV {result.flow['opencv']})")


def _devil_masked_pair(a, b, hole_a, hole_b, forward, occluded):
    """DEVIL @ d339a12 warp_error_mask_computer.py for one pair, written out: Resample2d (grid_sample,
    align_corners=True, border) of frame b and of b's hole indicator, NaN outside the non-occluded pixels
    that touch a hole, np.nanmean of the squared difference."""
    import torch
    import torch.nn.functional as F

    h, w = a.shape[:2]
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    grid = np.stack([(xs + forward[..., 0]) / (w - 1) * 2 - 1, (ys + forward[..., 1]) / (h - 1) * 2 - 1], -1)
    warp = lambda img: F.grid_sample(torch.from_numpy(img.transpose(2, 0, 1))[None], torch.from_numpy(grid)[None],  # noqa: E731
                                     mode="bilinear", padding_mode="border", align_corners=True)[0].numpy().transpose(1, 2, 0)
    warped = warp(b)
    warped_hole = warp(hole_b.astype(np.float32)[..., None])[..., 0]
    region = np.where((hole_a.astype(np.float32) + warped_hole) > 0, 1.0, np.nan)[..., None]
    no_occ = np.where(~occluded, 1.0, np.nan)[..., None]
    with np.errstate(invalid="ignore"):
        return np.nanmean(np.square((warped - a) * no_occ * region))


def test_ewarp_masked_equals_devils_formula_end_to_end(tmp_path, run_cli):
    import json
    import warnings

    from PIL import Image

    rng = np.random.default_rng(21)
    h, w, n = 40, 48, 3
    gt = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]
    pred = [np.clip(f.astype(int) + rng.integers(-40, 41, f.shape), 0, 255).astype(np.uint8) for f in gt]
    holes = [np.zeros((h, w), bool) for _ in range(n)]
    holes[0][5:20, 10:30] = True
    holes[1][8:22, 12:34] = True
    holes[2][30:38, 2:9] = True
    for side in ("gt", "pred", "masks", "flows"):
        (tmp_path / side).mkdir()
    flows = []
    for t in range(n - 1):
        # a smooth flow (no motion boundary) with a patch whose backward flow disagrees (occluded there)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        fw = np.stack([1.3 + 0.02 * xs, -0.6 + 0.015 * ys], -1).astype(np.float32)
        bw = -fw.copy()
        bw[25:35, 30:40] += 4.0
        np.save(tmp_path / "flows" / f"fw_{t:05d}.npy", fw)
        np.save(tmp_path / "flows" / f"bw_{t:05d}.npy", bw)
        flows.append((fw, bw))
    for t in range(n):
        Image.fromarray(gt[t]).save(tmp_path / "gt" / f"{t:05d}.png")
        Image.fromarray(pred[t]).save(tmp_path / "pred" / f"{t:05d}.png")
        Image.fromarray(holes[t].astype(np.uint8) * 255).save(tmp_path / "masks" / f"{t:05d}.png")
    comp = [np.where(holes[t][..., None], pred[t], gt[t]).astype(np.float32) / 255 for t in range(n)]
    per_pair = [_devil_masked_pair(comp[t], comp[t + 1], holes[t], holes[t + 1], flows[t][0],
                                   flow.occlusion_mask(*flows[t])) for t in range(n - 1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = float(np.nanmean(per_pair))
    assert want > 1e-3
    code, out, err = run_cli("measure", "ewarp_masked", "--variant", "files", "--pred", tmp_path / "pred", "--gt",
                             tmp_path / "gt", "--mask", tmp_path / "masks", "--flow-dir", tmp_path / "flows", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["aggregate"]["value"] == pytest.approx(want, rel=1e-5)
    (values,) = doc["extras"]["per_pair"].values()
    assert values == pytest.approx(per_pair, rel=1e-5)
    assert 0 < sum(doc["extras"]["occluded_pixels"][next(iter(doc["extras"]["occluded_pixels"]))]) < h * w * (n - 1)
    code, _, err = run_cli("measure", "ewarp_masked", "--variant", "files", "--pred", tmp_path / "pred", "--gt",
                           tmp_path / "gt", "--flow-dir", tmp_path / "flows")
    assert code == 2 and "needs the hole masks" in err
    code, _, err = run_cli("measure", "ewarp", "--variant", "files", "--pred", tmp_path / "pred", "--gt",
                           tmp_path / "gt", "--mask", tmp_path / "masks", "--flow-dir", tmp_path / "flows")
    assert code == 2 and "does not use masks" in err
