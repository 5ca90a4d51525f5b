"""``standardize_vos`` on a tiny fake DAVIS laid out as E2FGVI reads it (per-video zips, ``test_masks/``,
``test.json`` in its order) and as ProPainter reads it (plain folders). References: PIL's bicubic resize,
OpenCV's decode and INTER_LINEAR resize, and a hand-computed dilation (docs/protocols/video_completion.md)."""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SHARED
from triptych.errors import InputError
from triptych.manifests import read_manifest, verify_manifest
from triptych.pipelines.stage_io import run_stage
from triptych.pipelines.standardize_vos import main

RAW = (86, 48)  # raw frame (W, H): like DAVIS 854x480 -> 432x240, a non-integer ratio across, 2 down
SIZE = (32, 24)
TEST_JSON = {"camel": 2, "bear": 3}  # E2FGVI's order is test.json's key order, here not alphabetical
# (video, frame) -> (mask value, output row, output col) of a hole: the raw mask's block covering that output
# pixel's raw span, which NEAREST maps to that pixel alone
HOLES = {("camel", 0): (255, 5, 10), ("camel", 1): (255, 0, 0), ("bear", 0): (1, 10, 15),
         ("bear", 1): (1, 11, 16), ("bear", 2): (1, 23, 31)}
DILATION = 4


def _jpeg(rng: np.random.Generator) -> bytes:
    noise = rng.integers(0, 256, (RAW[1], RAW[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(cv2.GaussianBlur(noise, (5, 5), 1.5)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _mask(value: int, row: int, col: int) -> Image.Image:
    """A raw mask whose hole is the raw span of output pixel (row, col): [k * ratio, (k + 1) * ratio)."""
    span = [[math.ceil(k * RAW[i] / SIZE[i]) for k in (index, index + 1)] for i, index in ((1, row), (0, col))]
    mask = np.zeros((RAW[1], RAW[0]), np.uint8)
    mask[span[0][0]:span[0][1], span[1][0]:span[1][1]] = value
    return Image.fromarray(mask)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The same frames and masks in both layouts; zip members written in reverse order (E2FGVI sorts)."""
    base = tmp_path_factory.mktemp("raw")
    rng = np.random.default_rng(0)
    jpegs = {video: [_jpeg(rng) for _ in range(n)] for video, n in TEST_JSON.items()}
    e2fgvi, plain = base / "e2fgvi/davis", base / "propainter/davis"
    (e2fgvi / "JPEGImages").mkdir(parents=True)
    for video, frames in jpegs.items():
        with zipfile.ZipFile(e2fgvi / "JPEGImages" / f"{video}.zip", "w", zipfile.ZIP_STORED) as archive:
            for t in reversed(range(len(frames))):
                archive.writestr(f"{t:05d}.jpg", frames[t])
        for t, data in enumerate(frames):
            for root in (e2fgvi, plain):
                (root / "test_masks" / video).mkdir(parents=True, exist_ok=True)
                _mask(*HOLES[video, t]).save(root / "test_masks" / video / f"{t:05d}.png")
            (plain / "JPEGImages_432_240" / video).mkdir(parents=True, exist_ok=True)
            (plain / "JPEGImages_432_240" / video / f"{t:05d}.jpg").write_bytes(data)
    (e2fgvi / "test.json").write_text(json.dumps(TEST_JSON))
    return {"e2fgvi": e2fgvi, "plain": plain, "jpegs": jpegs}


def _e2fgvi_args(root: Path, out: Path, *extra: object) -> list[str]:
    return [str(a) for a in ("--name", "mini", "--layout", "e2fgvi", "--root", root, "--out", out,
                             "--width", SIZE[0], "--height", SIZE[1], *extra)]


def _plain_args(root: Path, out: Path, *extra: object) -> list[str]:
    return [str(a) for a in ("--name", "mini", "--frames", f"{root}/JPEGImages_432_240/{{video}}",
                             "--masks", f"{root}/test_masks/{{video}}", "--out", out,
                             "--width", SIZE[0], "--height", SIZE[1], *extra)]


@pytest.fixture(scope="module")
def built(raw: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    outs = {"e2fgvi": tmp_path_factory.mktemp("out_zip"), "plain": tmp_path_factory.mktemp("out_plain")}
    main(_e2fgvi_args(raw["e2fgvi"], outs["e2fgvi"]))
    main(_plain_args(raw["plain"], outs["plain"], "--split-list", raw["e2fgvi"] / "test.json"))
    return outs


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_zip_layout_keeps_test_json_order_and_sorted_members(raw: dict, built: dict) -> None:
    out = built["e2fgvi"]
    report = json.loads((out / "mini-report.json").read_text())
    assert report["standardized_videos"] == list(TEST_JSON)
    assert report["missing"] == report["extra"] == [] and report["frame_count_mismatch"] == {}
    for variant in ("e2fgvi", "propainter"):
        assert list(json.loads((out / "mini" / variant / "test.json").read_text())) == list(TEST_JSON)
        assert read_manifest(out / f"mini-{variant}.json").groups == TEST_JSON


def test_e2fgvi_frames_equal_pil_bicubic_and_propainter_frames_equal_cv2_linear(raw: dict, built: dict) -> None:
    for video, frames in raw["jpegs"].items():
        for t, data in enumerate(frames):
            decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            pil = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize(SIZE, Image.BICUBIC))
            linear = cv2.resize(decoded, SIZE, interpolation=cv2.INTER_LINEAR)
            e2fgvi = _png(built["e2fgvi"] / f"mini/e2fgvi/frames/{video}/{t:05d}.png")
            propainter = _png(built["e2fgvi"] / f"mini/propainter/frames/{video}/{t:05d}.png")
            assert e2fgvi.shape == propainter.shape == (SIZE[1], SIZE[0], 3)
            np.testing.assert_array_equal(e2fgvi, pil)
            np.testing.assert_array_equal(propainter, linear)
            assert (e2fgvi != propainter).any()  # the two protocols' ground truths differ


def test_masks_are_the_hand_computed_dilated_hole(built: dict) -> None:
    """NEAREST puts each raw block on its one output pixel; ``> 0`` keeps value 1 as a hole; 4 dilations
    with a 3x3 cross grow the pixel into the L1 ball of radius 4, cut at the frame border."""
    rows, cols = np.mgrid[:SIZE[1], :SIZE[0]]
    for (video, t), (_, row, col) in HOLES.items():
        expected = (np.abs(rows - row) + np.abs(cols - col) <= DILATION).astype(np.uint8) * 255
        for variant in ("e2fgvi", "propainter"):
            np.testing.assert_array_equal(_png(built["e2fgvi"] / f"mini/{variant}/masks/{video}/{t:05d}.png"), expected)


def test_plain_layout_gives_the_same_files_as_the_zips(built: dict) -> None:
    for variant in ("e2fgvi", "propainter"):
        zipped, plain = (read_manifest(built[k] / f"mini-{variant}.json") for k in ("e2fgvi", "plain"))
        assert zipped.entries == plain.entries and len(zipped.entries) == 2 * sum(TEST_JSON.values())


def test_manifest_hashes_verify_and_name_a_changed_file(built: dict, tmp_path: Path) -> None:
    copy = shutil.copytree(built["e2fgvi"], tmp_path / "out")
    for variant in ("e2fgvi", "propainter"):
        verify_manifest(read_manifest(copy / f"mini-{variant}.json"), copy / "mini" / variant)
    changed = copy / "mini/e2fgvi/frames/bear/00001.png"
    Image.fromarray(255 - _png(changed)).save(changed)
    with pytest.raises(InputError, match=re.escape(str(changed))):
        verify_manifest(read_manifest(copy / "mini-e2fgvi.json"), copy / "mini/e2fgvi")


def test_missing_and_extra_videos_are_named(raw: dict, tmp_path: Path) -> None:
    root = shutil.copytree(raw["e2fgvi"], tmp_path / "davis")
    shutil.copy(root / "JPEGImages/bear.zip", root / "JPEGImages/elephant.zip")
    shutil.copytree(root / "test_masks/bear", root / "test_masks/elephant")
    shutil.copy(root / "JPEGImages/bear.zip", root / "JPEGImages/train-only.zip")  # not in test.json: not read
    (root / "test.json").write_text(json.dumps({**TEST_JSON, "elephant": 3}))
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"bear": 3, "camel": 2, "dog": 5}))
    with pytest.raises(InputError, match=r"missing: dog") as caught:
        main(_e2fgvi_args(root, tmp_path / "out", "--split-list", split))
    assert caught.value.fix and "--allow-missing 1" in caught.value.fix
    main(_e2fgvi_args(root, tmp_path / "out", "--split-list", split, "--allow-missing", 1))
    report = json.loads((tmp_path / "out/mini-report.json").read_text())
    assert (report["missing"], report["extra"]) == (["dog"], ["elephant"])
    assert report["standardized_videos"] == ["bear", "camel"]  # the split list's order
    plain = shutil.copytree(raw["plain"], tmp_path / "plain")
    shutil.rmtree(plain / "JPEGImages_432_240/bear")
    with pytest.raises(InputError, match=r"missing: bear"):
        main(_plain_args(plain, tmp_path / "out_plain", "--split-list", raw["e2fgvi"] / "test.json"))


def _garbage_zip(root: Path) -> Path:
    path = root / "JPEGImages/bear.zip"
    path.write_bytes(b"not a zip at all")
    return path


def _corrupt_member(root: Path) -> Path:
    """Flip a byte inside a stored member: the zip opens, reading the member fails its CRC."""
    path = root / "JPEGImages/bear.zip"
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("00001.jpg")
    data = bytearray(path.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + 100] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _no_masks(root: Path) -> Path:
    shutil.rmtree(root / "test_masks/camel")
    return root / "test_masks/camel"


def _one_mask_gone(root: Path) -> Path:
    (root / "test_masks/bear/00002.png").unlink()
    return root / "test_masks/bear/00002.png"


def _count_mismatch(root: Path) -> Path:
    (root / "test.json").write_text(json.dumps({"camel": 2, "bear": 4}))
    return root / "JPEGImages/bear.zip"


def _stray_member(root: Path) -> Path:
    with zipfile.ZipFile(root / "JPEGImages/camel.zip", "a") as archive:
        archive.writestr("notes.txt", "x")
    return root / "JPEGImages/camel.zip"


@pytest.mark.parametrize("damage, words", [
    (_garbage_zip, "not a readable zip"),
    (_corrupt_member, "member '00001.jpg' is corrupt"),
    (_no_masks, "video 'camel' has frames"),
    (_one_mask_gone, "1 of 3 masks missing"),
    (_count_mismatch, "3 frames, but"),
    (_stray_member, "notes.txt"),
])
def test_broken_inputs_are_named_with_a_fix(raw: dict, tmp_path: Path, damage, words: str) -> None:
    root = shutil.copytree(raw["e2fgvi"], tmp_path / "davis")
    named = damage(root)
    with pytest.raises(InputError) as caught:
        main(_e2fgvi_args(root, tmp_path / "out"))
    assert str(named) in caught.value.message and words in caught.value.message and caught.value.fix


def test_stage_exit_code_and_stderr_on_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_stage(main, _e2fgvi_args(tmp_path / "nowhere", tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'nowhere'}: folder not found" in err and "fix:" in err


def test_packaged_split_lists_are_the_published_ones() -> None:
    """The lists the stage ships (a fresh clone has no ../shared) equal the shared copies, and hold the
    video and frame counts docs/protocols/video_completion.md states ("Data")."""
    if not (SHARED / "data/splits").is_dir():
        pytest.skip(f"{SHARED / 'data/splits'} not found (set TRIPTYCH_SHARED)")
    text = (REPO / "docs/protocols/video_completion.md").read_text()
    facts = {"davis_test": re.search(r"\*\*DAVIS\*\*: the (\d+) test videos.*?([\d,]+) frames", text),
             "youtube-vos_test": re.search(r"\*\*YouTube-VOS\*\*: (\d+) test videos, ([\d,]+) frames", text)}
    for name, fact in facts.items():
        packaged = REPO / f"datasets/splits/{name}.json"
        assert packaged.read_bytes() == (SHARED / f"data/splits/{name}.json").read_bytes()
        counts = json.loads(packaged.read_text())
        assert (len(counts), sum(counts.values())) == (int(fact[1]), int(fact[2].replace(",", "")))
        assert list(counts) == sorted(counts)  # E2FGVI's test.json order is alphabetical


def test_masks_no_frame_uses_are_counted_in_the_report(raw: dict, tmp_path: Path) -> None:
    root = shutil.copytree(raw["e2fgvi"], tmp_path / "davis")
    shutil.copy(root / "test_masks/camel/00001.png", root / "test_masks/camel/00002.png")
    main(_e2fgvi_args(root, tmp_path / "out"))
    assert json.loads((tmp_path / "out/mini-report.json").read_text())["unused_masks"] == {"camel": 1}


@pytest.mark.slow  # each spawned worker imports torch (via triptych.benchmarks.vos): ~15 s apiece on a busy host
def test_worker_count_does_not_change_an_output_byte(raw: dict, built: dict, tmp_path: Path) -> None:
    main(_e2fgvi_args(raw["e2fgvi"], tmp_path, "--workers", 2))
    for variant in ("e2fgvi", "propainter"):
        assert (tmp_path / f"mini-{variant}.json").read_bytes() == (built["e2fgvi"] / f"mini-{variant}.json").read_bytes()
