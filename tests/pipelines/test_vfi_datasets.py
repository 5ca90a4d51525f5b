"""The published frame-interpolation test sets: layouts read as the AMT scripts read them, listings and
manifests from the ``standardize_vfi`` stage, frame preparation, the time t of the x8 sets, and names
that pair reproduced rows with the thesis' reported rows. Data: ``vfi_fake_layouts`` (real layouts,
fake frames)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import vfi_fake_layouts as fake
from conftest import REPO
from triptych.errors import InputError
from triptych.pipelines.standardize_vfi import main as standardize_vfi
from triptych.registry import registry

VFI_SPECS = REPO / "benchmarks/specs/vfi.yaml"


def _build(tmp_path: Path, name: str, layout: str, root: Path, *extra: str) -> dict:
    """Run the stage into ``<tmp>/data/build/vfi`` (the data root's listing folder); return the listing."""
    out = tmp_path / "data/build/vfi"
    standardize_vfi(["--name", name, "--layout", layout, "--root", str(root), "--out", str(out), *extra])
    return json.loads((out / f"{name.replace('/', '-')}.triplets.json").read_text())


def _ids(listing: dict) -> list[str]:
    return [t["sample_id"] for t in listing["triplets"]]


def test_vimeo90k_list_skips_lines_of_length_at_most_one(tmp_path: Path) -> None:
    root = fake.make_vimeo90k(tmp_path / "vimeo_triplet", ["00001/0001", "00001/0002", "00078/0970"])
    listing = _build(tmp_path, "vimeo90k/test", "vimeo90k", root)
    assert _ids(listing) == ["00001/0001/im2", "00001/0002/im2", "00078/0970/im2"]
    assert listing["triplets"][2] == {"sample_id": "00078/0970/im2", "frame0": "sequences/00078/0970/im1.png",
                                      "gt": "sequences/00078/0970/im2.png", "frame1": "sequences/00078/0970/im3.png",
                                      "t": 0.5}
    manifest = json.loads((tmp_path / "data/build/vfi/vimeo90k-test.manifest.json").read_text())
    assert manifest["name"] == "vimeo90k/test" and manifest["groups"] == {"triplets": 3}
    assert len(manifest["entries"]) == 9 and manifest["entries"][0]["width"] == 8


def test_ucf101_folders_in_string_order(tmp_path: Path) -> None:
    root = fake.make_ucf101(tmp_path / "ucf101_interp_ours", ["2", "10", "1", "100"])
    (root / "readme.txt").write_text("not a triplet folder")
    listing = _build(tmp_path, "ucf101/dvf-test", "ucf101", root)
    assert _ids(listing) == ["1/frame_01_gt", "10/frame_01_gt", "100/frame_01_gt", "2/frame_01_gt"]
    assert listing["triplets"][0]["frame1"] == "1/frame_02.png"


def test_snu_film_keeps_the_last_three_path_components(tmp_path: Path) -> None:
    triplets = [("GOPRO_test/GOPR0384_11_00/000001.png", "GOPRO_test/GOPR0384_11_00/000005.png",
                 "GOPRO_test/GOPR0384_11_00/000009.png"),
                ("YouTube_test/0000/00001.png", "YouTube_test/0000/00003.png", "YouTube_test/0000/00005.png")]
    root = fake.make_snu_film(tmp_path / "SNU_FILM", "hard", triplets)
    listing = _build(tmp_path, "snu-film/hard", "snu-film", root, "--list", "test-hard.txt")
    assert _ids(listing) == ["GOPRO_test/GOPR0384_11_00/000005", "YouTube_test/0000/00003"]
    assert [(t["frame0"], t["gt"], t["frame1"]) for t in listing["triplets"]] == triplets


@pytest.fixture(scope="module")
def xiph_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake.make_xiph(tmp_path_factory.mktemp("fake") / "xiph")


def test_xiph_has_the_published_triplet_count(tmp_path: Path, xiph_root: Path) -> None:
    listing = _build(tmp_path, "xiph", "xiph", xiph_root)
    for name in ("xiph/2k", "xiph/4k"):
        assert len(listing["triplets"]) == registry().benchmark(name).params["triplets"]
    first = listing["triplets"][0]
    assert (first["sample_id"], first["frame0"], first["gt"], first["frame1"]) == (
        "BoxingPractice/002", "BoxingPractice/001.png", "BoxingPractice/002.png", "BoxingPractice/003.png")
    assert _ids(listing)[48] == "BoxingPractice/098" and _ids(listing)[-1] == "Tango/098"


def test_gopro_sets_of_nine_at_stride_eight_with_t_k_over_8(tmp_path: Path) -> None:
    root = fake.make_gopro(tmp_path / "GOPRO", frames=20)  # 2 full sets (0..8, 8..16); 17..19 unused
    listing = _build(tmp_path, "gopro/x8-test", "gopro", root)
    assert len(listing["triplets"]) == 11 * 2 * 7
    first_video = [t for t in listing["triplets"] if t["sample_id"].startswith("GOPR0384_11_00/")]
    assert [t["sample_id"] for t in first_video] == [f"GOPR0384_11_00/{j:06d}" for j in (*range(1, 8), *range(9, 16))]
    assert [t["t"] for t in first_video] == [k / 8 for k in range(1, 8)] * 2
    assert {(t["frame0"], t["frame1"]) for t in first_video} == {
        ("test/GOPR0384_11_00/000000.png", "test/GOPR0384_11_00/000008.png"),
        ("test/GOPR0384_11_00/000008.png", "test/GOPR0384_11_00/000016.png")}
    assert not any("train" in t["gt"] for t in listing["triplets"])


def test_adobe240_takes_every_tenth_folder_of_the_sorted_names(tmp_path: Path) -> None:
    names = [f"clip_{i:02d}" for i in range(25)]
    created = names[:]
    random.Random(0).shuffle(created)
    root = fake.make_adobe240(tmp_path / "test_frames", created)
    listing = _build(tmp_path, "adobe240/x8-test", "adobe240", root)
    assert sorted({t["sample_id"].split("/")[0] for t in listing["triplets"]}) == ["clip_09", "clip_19"]
    assert len(listing["triplets"]) == 2 * 7


@pytest.mark.parametrize("layout", ["vimeo90k", "ucf101", "snu-film", "xiph", "adobe240"])
def test_a_missing_frame_is_an_error_naming_it_and_the_fix(tmp_path: Path, layout: str) -> None:
    base = tmp_path / "set"
    extra: tuple[str, ...] = ()
    if layout == "vimeo90k":
        root, gone = fake.make_vimeo90k(base, ["00001/0001", "00001/0002"]), "sequences/00001/0002/im3.png"
    elif layout == "ucf101":
        root, gone = fake.make_ucf101(base, ["1", "2"]), "2/frame_01_gt.png"
    elif layout == "snu-film":
        root = fake.make_snu_film(base, "easy", [("a/b/1.png", "a/b/2.png", "a/b/3.png")])
        gone, extra = "a/b/3.png", ("--list", "test-easy.txt")
    elif layout == "xiph":
        root, gone = fake.make_xiph(base, frames=99, clips=fake.XIPH_CLIPS[:1]), "BoxingPractice/050.png"
    else:
        root, gone = fake.make_adobe240(base, [f"v{i:02d}" for i in range(10)], frames=9), "v09/000008.png"
    (root / gone).unlink()
    with pytest.raises(InputError) as info:
        standardize_vfi(["--name", "x", "--layout", layout, "--root", str(root), "--out", str(tmp_path / "o"),
                         *extra])
    assert str(root / gone) in info.value.message or str(root / Path(gone).parent) in info.value.message
    assert info.value.fix


@pytest.mark.parametrize("layout, make, hint", [
    ("vimeo90k", lambda r: r.mkdir(), "tri_testlist.txt"),
    ("snu-film", lambda r: r.mkdir(), "--list"),
    ("gopro", lambda r: fake.make_gopro(r, frames=8), "at least 9"),
    ("adobe240", lambda r: fake.make_adobe240(r, ["a", "b"]), "[9::10]"),
    ("xiph", lambda r: (r / "BoxingPractice").mkdir(parents=True), "ffmpeg"),
])
def test_a_wrong_layout_is_an_error_that_says_what_is_expected(tmp_path: Path, layout, make, hint) -> None:
    root = tmp_path / "set"
    make(root)
    with pytest.raises(InputError) as info:
        standardize_vfi(["--name", "x", "--layout", layout, "--root", str(root), "--out", str(tmp_path / "o")])
    assert str(root) in info.value.message
    assert hint in f"{info.value.message} {info.value.fix}"


def test_a_malformed_snu_film_line_is_named(tmp_path: Path) -> None:
    root = fake.make_snu_film(tmp_path / "snu", "easy", [("a/b/1.png", "a/b/2.png", "a/b/3.png")])
    with (root / "test-easy.txt").open("a") as handle:
        handle.write("a/b/1.png a/b/2.png\n")
    with pytest.raises(InputError, match="line 2"):
        standardize_vfi(["--name", "x", "--layout", "snu-film", "--root", str(root), "--list", "test-easy.txt",
                         "--out", str(tmp_path / "o")])


def test_each_vfi_benchmark_name_is_a_reported_benchmark_and_split() -> None:
    """Reproduced rows carry (benchmark, split) from the registry name; each must be a row of thesis
    tables 4.1 / 4.2, so the leaderboard pairs them; every reported quality benchmark has a spec."""
    from triptych.leaderboard.reported import load_reported

    reported = load_reported()
    quality = reported[reported.table.isin(["4.1", "4.2"]) & reported.metric.isin(["psnr", "ssim"])]
    pairs = set(zip(quality.benchmark, quality.split))
    names = list(yaml.safe_load(VFI_SPECS.read_text()))
    for name in names:
        spec = registry().benchmark(name)
        assert f"{spec.benchmark}/{spec.split}" == name and (spec.benchmark, spec.split) in pairs, name
        assert set(spec.metrics) == set(zip(quality.metric, quality.metric_variant))
    assert {f"{b}/{s}" for b, s in pairs} == set(names)


def test_each_variant_carries_padding_and_scale() -> None:
    for name in yaml.safe_load(VFI_SPECS.read_text()):
        for params in registry().benchmark(name).variants.values():
            assert {"prepare", "pad_divisor", "pad_mode", "scale_factor"} <= set(params), name
            assert (params["pad_mode"] == "replicate") == (params["pad_divisor"] is not None), name


def test_x8_targets_reach_the_method_with_their_t_and_pair_with_reported_rows(tmp_path: Path) -> None:
    """Frame j of video v is a uniform grey 3j + v, so the linear blend at t = k/8 of frames 0 and 8 is the
    ground truth up to float32 rounding (PSNR above 100 dB); with t = 0.5 it would be 3|k - 4| / 255 off
    (PSNR below 40 dB) for every k != 4. Frames are 530x520: the variant's 512x512 centre crop applies."""
    from triptych.leaderboard.reported import load_reported
    from triptych.results import read_samples
    from triptych.scoring import load_benchmark, score

    root = fake.make_gopro(tmp_path / "GOPRO", frames=9, size=(530, 520))
    _build(tmp_path, "gopro/x8-test", "gopro", root)
    data = load_benchmark("gopro/x8-test", data_root=tmp_path / "data")
    assert data.task.read(data.samples[0].gt).shape == (512, 512, 3)
    run = score("gopro/x8-test", tmp_path / "results", method="linear_blend", data_root=tmp_path / "data",
                metrics=["psnr:amt"])
    rows = read_samples(run)
    assert len(rows) == 11 * 7 and (rows.value > 100).all()
    assert set(zip(rows.benchmark, rows.split)) == {("gopro", "x8-test")}
    reported = load_reported()
    assert ((reported.benchmark == "gopro") & (reported.split == "x8-test") & (reported.metric == "psnr")
            & (reported.metric_variant == "amt")).any()


def test_gopro_folders_with_fewer_than_9_frames_are_skipped_with_a_note_and_make_a_subset(tmp_path: Path,
                                                                                          capsys) -> None:
    """AMT's loader cuts no set from a video with fewer than 9 frames; a git copy of GoPro has no empty
    folders at all. Both are skipped with a note naming the folder (the root is right, so no 'point --root'
    fix), and the listing is a subset: scored only when asked, and recorded."""
    from triptych.scoring import load_benchmark

    root = fake.make_gopro(tmp_path / "GOPRO", frames=9)
    (root / "test/GOPR0871_11_00/000004.png").unlink()
    shutil.rmtree(root / "test/GOPR0868_11_00")
    listing = _build(tmp_path, "gopro/x8-test", "gopro", root)
    out = capsys.readouterr().out
    assert f"{root / 'test/GOPR0871_11_00'}: 8 frame(s)" in out and f"{root / 'test/GOPR0868_11_00'}: folder missing" in out
    assert "point --root" not in out and "(subset 63/?: score it with --subset)" in out
    assert len(listing["triplets"]) == 9 * 7 and listing["subset"]["count"] == 63 and listing["subset"]["of"] is None
    assert len(listing["subset"]["notes"]) == 2
    with pytest.raises(InputError) as info:
        load_benchmark("gopro/x8-test", data_root=tmp_path / "data")
    assert "8 frame(s)" in info.value.message and "--subset" in info.value.fix
    data = load_benchmark("gopro/x8-test", data_root=tmp_path / "data", params={"subset": "true"})
    assert data.subset["count"] == 63 and data.subset["unit"] == "triplets"


def test_subset_mode_keeps_the_triplets_present_and_is_recorded(tmp_path: Path) -> None:
    """6 Vimeo90K triplets listed, one missing a frame: refused (the fix names --subset) unless subset mode
    is asked for; then the listing holds 5 of 6, and the benchmark scores it only with subset=true."""
    from triptych.scoring import load_benchmark, score

    names = [f"00001/{i:04d}" for i in range(1, 7)]
    root = fake.make_vimeo90k(tmp_path / "vimeo_triplet", names)
    (root / "sequences/00001/0004/im1.png").unlink()
    with pytest.raises(InputError) as info:
        _build(tmp_path, "vimeo90k/test", "vimeo90k", root)
    assert "im1.png" in info.value.message and "--subset 1" in info.value.fix
    listing = _build(tmp_path, "vimeo90k/test", "vimeo90k", root, "--subset", "1")
    assert listing["subset"] == {"count": 5, "of": 6, "unit": "triplets", "skipped": ["00001/0004/im2"], "notes": []}
    assert "00001/0004/im2" not in _ids(listing)
    with pytest.raises(InputError, match="needs 3782 triplets"):
        load_benchmark("vimeo90k/test", data_root=tmp_path / "data")
    run = score("vimeo90k/test", tmp_path / "results", method="linear_blend", data_root=tmp_path / "data",
                metrics=["psnr:amt"], params={"subset": "true"})
    recorded = json.loads((run / "run.json").read_text())
    assert recorded["data"]["subset"]["count"] == 5 and recorded["data"]["subset"]["of"] == 3782
    assert recorded["benchmark_params"]["subset"] is True and recorded["split"] == "test"


def test_xiph_with_its_first_frames_only_is_a_subset_of_392(tmp_path: Path) -> None:
    """Xiph's first 10 frames of each clip: triplets centred on 2, 4, 6, 8 (4 per clip) are kept in subset
    mode, and xiph/2k records 32 of the published 392."""
    from triptych.scoring import load_benchmark

    root = fake.make_xiph(tmp_path / "xiph", frames=10)
    with pytest.raises(InputError, match="011.png"):
        _build(tmp_path, "xiph", "xiph", root)
    listing = _build(tmp_path, "xiph", "xiph", root, "--subset", "1")
    assert listing["subset"]["count"] == 8 * 4 and listing["subset"]["of"] == 392
    assert _ids(listing)[:4] == ["BoxingPractice/002", "BoxingPractice/004", "BoxingPractice/006", "BoxingPractice/008"]
    data = load_benchmark("xiph/2k", data_root=tmp_path / "data", params={"subset": "true"})
    assert (data.subset["count"], data.subset["of"]) == (32, 392)


def test_listing_must_hold_the_published_count_and_match_its_data(tmp_path: Path) -> None:
    from triptych.scoring import load_benchmark

    root = fake.make_vimeo90k(tmp_path / "vimeo_triplet", ["00001/0001", "00001/0002"])
    _build(tmp_path, "vimeo90k/test", "vimeo90k", root)
    published = registry().benchmark("vimeo90k/test").params["triplets"]
    with pytest.raises(InputError, match=f"needs {published} triplets") as info:
        load_benchmark("vimeo90k/test", data_root=tmp_path / "data")
    assert "standardize_vfi" in info.value.fix
    with pytest.raises(InputError, match="no triplet listing"):
        load_benchmark("ucf101/dvf-test", data_root=tmp_path / "data")

    ucf = fake.make_ucf101(tmp_path / "ucf", [str(i) for i in range(registry().benchmark("ucf101/dvf-test")
                                                                         .params["triplets"])])
    _build(tmp_path, "ucf101/dvf-test", "ucf101", ucf)
    data = load_benchmark("ucf101/dvf-test", data_root=tmp_path / "data")
    assert data.root == ucf.resolve() and data.samples[1].sample_id == "1/frame_01_gt"
    fake.grey(ucf / "7/frame_02.png", 200)
    with pytest.raises(InputError, match="does not match its manifest"):
        load_benchmark("ucf101/dvf-test", data_root=tmp_path / "data")


def test_the_listing_root_is_relative_to_the_listing(tmp_path: Path, xiph_root: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative --root is stored relative to --out, so the listing works from any working directory."""
    from triptych.scoring import load_benchmark

    xiph = shutil.copytree(xiph_root, tmp_path / "xiph")
    monkeypatch.chdir(tmp_path)
    listing = _build(Path("."), "xiph", "xiph", Path("xiph"))
    assert listing["root"] == "../../../xiph"
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "data", moved / "data")
    shutil.copytree(xiph, moved / "xiph")
    monkeypatch.chdir(REPO)
    assert load_benchmark("xiph/4k", data_root=moved / "data").root == (moved / "xiph").resolve()


def _coordinates(height: int, width: int) -> np.ndarray:
    """A frame whose pixel (r, c) stores r and c in base 256: (r % 256, c % 256, r // 256 * 16 + c // 256)."""
    r, c = np.mgrid[:height, :width]
    return np.stack([r % 256, c % 256, r // 256 * 16 + c // 256], -1).astype(np.uint8)


def test_frame_preparations_known_answers() -> None:
    from triptych.benchmarks.vfi import FramePreparation

    where = Path("frame.png")
    variants = {name: registry().benchmark(name).variants["amt"]["prepare"] for name in ("xiph/2k", "xiph/4k",
                                                                                           "gopro/x8-test")}
    # xiph.py 2K: INTER_AREA from 4096x2160 to 2048x1080 is the mean of each 2x2 block; blocks of
    # (v-1, v+1 / v+1, v-1) have mean v exactly, so no rounding is involved.
    v = np.random.default_rng(0).integers(1, 255, (1080, 2048, 3)).astype(np.int16)
    frame = np.empty((2160, 4096, 3), np.int16)
    frame[0::2, 0::2] = frame[1::2, 1::2] = v - 1
    frame[0::2, 1::2] = frame[1::2, 0::2] = v + 1
    resized = FramePreparation.from_params(variants["xiph/2k"], "xiph/2k")(frame.astype(np.uint8), where)
    assert resized.shape == (1080, 2048, 3) and np.array_equal(resized, v.astype(np.uint8))
    # xiph.py 4K: img[540:-540, 1024:-1024]
    full = _coordinates(2160, 4096)
    cropped = FramePreparation.from_params(variants["xiph/4k"], "xiph/4k")(full, where)
    assert cropped.shape == (1080, 2048, 3) and np.array_equal(cropped, full[540:1620, 1024:3072])
    assert tuple(cropped[0, 0]) == (540 % 256, 1024 % 256, 540 // 256 * 16 + 1024 // 256)
    # center_crop_woflow on 720x1280: rows 360-256 .. 360+256, columns 640-256 .. 640+256
    centre = FramePreparation.from_params(variants["gopro/x8-test"], "gopro")(_coordinates(720, 1280), where)
    assert centre.shape == (512, 512, 3) and np.array_equal(centre, _coordinates(720, 1280)[104:616, 384:896])
    with pytest.raises(InputError, match="smaller than the 512x512"):
        FramePreparation.from_params(variants["gopro/x8-test"], "gopro")(_coordinates(500, 1280), where)
