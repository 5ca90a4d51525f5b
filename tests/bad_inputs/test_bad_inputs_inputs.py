"""The bad-input catalogue of input reading (docs/bad_inputs.md, "Frames, masks, arrays and folders"): the one
reader per kind of input (``triptych.media``), exact folders and contained paths (``triptych.folders``),
through the real CLI. ``ACCEPTED`` lists what triptych deliberately reads, each with the number it must give.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
from PIL import Image

import vfi_fake_layouts as fake
from bad_input_cases import (FRAMES, SAMPLE, Case, _datasets_copy, _frames, _image_case, _measure, _npy_case,
                             _rebuild_manifest, assert_clear_error)
from triptych.registry import registry

GT = FRAMES / "00001.png"
MASKS = SAMPLE / "tennis/masks"


def _replace(path: Path, new_name: str, write) -> None:
    """Replace the frame ``path`` by ``new_name`` (beside it), written by ``write(array, target)``."""
    array = np.asarray(Image.open(path).convert("RGB"))
    path.unlink()
    write(array, path.with_name(new_name))


def _png_16bit(channels: int):
    def transform(p: Path) -> None:
        rgb = np.asarray(Image.open(p).convert("RGB")).astype(np.uint16) * 257
        planes = rgb[..., ::-1] if channels >= 3 else rgb[..., :1]
        if channels == 4:
            planes = np.concatenate([planes, np.full_like(planes[..., :1], 65535)], axis=-1)
        cv2.imwrite(str(p), planes)
    return transform


def _palette_with_alpha(p: Path) -> None:
    image = Image.open(p).convert("RGB").quantize(16)
    image.info["transparency"] = 0
    image.save(p, transparency=0)


def _jpeg(orientation: int | None = None, mode: str = "RGB"):
    def transform(p: Path) -> None:
        def write(array: np.ndarray, target: Path) -> None:
            image = Image.fromarray(array).convert(mode)
            exif = Image.Exif()
            if orientation is not None:
                exif[0x0112] = orientation
            image.save(target, "JPEG", quality=95, exif=exif.tobytes())
        _replace(p, "00001.jpg", write)
    return transform


def _content_as(fmt: str):
    def transform(p: Path) -> None:
        buffer = io.BytesIO()
        Image.open(p).convert("RGB").save(buffer, fmt)
        p.write_bytes(buffer.getvalue())
    return transform


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _huge_header(p: Path) -> None:
    """A valid PNG signature and header claiming 20000x20000 RGB, and almost no pixel data."""
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
                  + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b""))


def _mask_case(mode: str):
    """``measure psnr_masked --variant hole`` with the mask of frame 00001 saved in ``mode``."""
    def setup(tmp: Path) -> list:
        pred, gt = _frames(tmp)
        (tmp / "masks").mkdir()
        for i in range(2):
            mask = np.asarray(Image.open(MASKS / f"{i:05d}.png").convert("L"))
            image = Image.fromarray(mask)
            if mode == "RGBA":
                image = image.convert("RGBA")
            elif mode == "I;16":
                image = Image.fromarray(mask.astype(np.uint16) * 257)
            image.save(tmp / "masks" / f"{i:05d}.png")
        return ["measure", "psnr_masked", "--variant", "hole", "--pred", pred, "--gt", gt, "--mask", tmp / "masks"]
    return setup


def _npz_named_npy(tmp: Path) -> list:
    with open(tmp / "pred.npy", "wb") as handle:
        np.savez(handle, pred=np.zeros((3, 240, 432), np.float32))
    return _measure(tmp, tmp / "pred.npy", FRAMES / "00000.png", variant="amt")


def _tennis_pred_dir(tmp: Path) -> Path:
    """A correct --pred-dir for sample-tennis (the ground-truth frames themselves)."""
    shutil.copytree(FRAMES, tmp / "pred/tennis")
    return tmp / "pred"


def _score_pred_dir(change):
    def setup(tmp: Path) -> list:
        pred = _tennis_pred_dir(tmp)
        change(pred / "tennis")
        return ["score", "--benchmark", "sample-tennis", "--pred-dir", pred, "--out", tmp / "r"]
    return setup


def _everything_wrong(folder: Path) -> None:
    (folder / "00002.png").unlink()
    shutil.copy(folder / "00005.png", folder / "00099.png")
    Image.open(folder / "00003.png").save(folder / "00003.jpg")
    (folder / "old").mkdir()
    shutil.copy(folder / "00004.png", folder / "old/00004.png")


def _frame_added_to_manifest_folder(tmp: Path) -> list:
    root = _datasets_copy(tmp)
    shutil.copy(root / "samples/tennis/frames/00000.png", root / "samples/tennis/frames/00024.png")
    return ["score", "--benchmark", "sample-tennis", "--method", "mean_fill", "--out", tmp / "r", "--data-root", root]


def _manifest_without_sha256(tmp: Path) -> list:
    root = _datasets_copy(tmp)
    path = root / "manifests/sample-tennis.json"
    doc = json.loads(path.read_text())
    del doc["entries"][3]["sha256"]
    path.write_text(json.dumps(doc))
    return ["score", "--benchmark", "sample-tennis", "--method", "mean_fill", "--out", tmp / "r", "--data-root", root]


def _manifest_climbing_out(tmp: Path) -> list:
    (tmp / "root").mkdir()
    shutil.copy(GT, tmp / "secret.png")
    from triptych.manifests import build_manifest, write_manifest

    manifest = build_manifest("outside", tmp / "root", ["../secret.png"], {})
    write_manifest(manifest, tmp / "m.json")
    return ["manifest", "verify", tmp / "m.json", tmp / "root"]


def _standardize_vfi(name: str, layout: str, root: Path, out: Path) -> None:
    """The ``standardize_vfi`` stage, its report kept off the captured stdout of the command under test."""
    from triptych.pipelines.standardize_vfi import main as standardize_vfi

    with contextlib.redirect_stdout(io.StringIO()):
        standardize_vfi(["--name", name, "--layout", layout, "--root", str(root), "--out", str(out)])


def _ucf_listing(tmp: Path, edit) -> list:
    """A complete fake UCF101 listing (the published triplet count) whose first triplet ``edit`` changes."""
    count = registry().benchmark("ucf101/dvf-test").params["triplets"]
    root = fake.make_ucf101(tmp / "ucf", [str(i) for i in range(count)])
    out = tmp / "data/build/vfi"
    _standardize_vfi("ucf101/dvf-test", "ucf101", root, out)
    listing_path = out / "ucf101-dvf-test.triplets.json"
    listing = json.loads(listing_path.read_text())
    edit(listing["triplets"][0])
    listing_path.write_text(json.dumps(listing))
    (tmp / "outside").mkdir()
    fake.grey(tmp / "outside/secret.png", 7)
    return ["score", "--benchmark", "ucf101/dvf-test", "--method", "linear_blend", "--out", tmp / "r",
            "--data-root", tmp / "data"]


def _small_frames(tmp: Path) -> list:
    for side in ("pred", "gt"):
        fake.grey(tmp / side / "tiny.png", 100 if side == "pred" else 90, size=(40, 40))
    return ["measure", "ssim", "--variant", "win65", "--pred", tmp / "pred/tiny.png", "--gt", tmp / "gt/tiny.png"]


def _scale(low: float, high: float) -> np.ndarray:
    gt = np.asarray(Image.open(FRAMES / "00000.png")).transpose(2, 0, 1).astype(np.float32) / 255
    return (gt * (high - low) + low).astype(np.float32)


CASES = [
    Case("48-bit-rgb-png", _image_case(_png_16bit(3)), ("00001.png", "16-bit", "8-bit images only", "value // 257")),
    Case("64-bit-rgba-png", _image_case(_png_16bit(4)), ("00001.png", "16-bit")),
    Case("palette-with-alpha", _image_case(_palette_with_alpha), ("00001.png", "'PA'", "flatten it")),
    Case("cmyk-jpeg", _image_case(_jpeg(mode="CMYK")), ("00001.jpg", "CMYK", "sRGB")),
    Case("exif-rotated-jpeg", _image_case(_jpeg(orientation=3)), ("00001.jpg", "EXIF orientation 3", "exif_transpose")),
    Case("webp-named-png", _image_case(_content_as("WEBP")), ("00001.png", "WEBP data", "convert it to PNG")),
    Case("jpeg-named-png", _image_case(_content_as("JPEG")), ("00001.png", "JPEG data", "rename it")),
    Case("huge-png-header", _image_case(_huge_header), ("00001.png", "67,108,864 pixels", "corrupt header")),
    Case("rgba-mask", _mask_case("RGBA"), ("00000.png", "mask mode is 'RGBA'", "mode 'L'")),
    Case("16-bit-mask", _mask_case("I;16"), ("00000.png", "16-bit")),
    Case("npy-on-0-255-scale", _npy_case(_scale(0, 255)), ("pred.npy", "looks like 0-255", "nothing is rescaled")),
    Case("npy-on-minus-one-one-scale", _npy_case(_scale(-1, 1)), ("pred.npy", "looks like [-1, 1]", "(x + 1) / 2")),
    Case("npz-named-npy", _npz_named_npy, ("pred.npy", ".npz archive", "numpy.save")),
    Case("file-of-another-kind-in-pred-folder",
         _image_case(lambda p: p.rename(p.with_suffix(".webp"))), ("00001.webp", "move it out")),
    Case("frame-added-to-manifest-folder", _frame_added_to_manifest_folder,
         ("tennis/frames/00024.png", "not in its manifest", "regenerate the manifest")),
    Case("pred-dir-extra-frame", _score_pred_dir(lambda f: shutil.copy(f / "00000.png", f / "00024.png")),
         ("tennis/00024.png", "not expected")),
    Case("pred-dir-duplicate-stem", _score_pred_dir(lambda f: Image.open(f / "00003.png").save(f / "00003.jpg")),
         ("00003.jpg and 00003.png", "given twice")),
    Case("pred-dir-stray-folder", _score_pred_dir(lambda f: (f / "old").mkdir()), ("tennis/old/", "stray folder")),
    Case("pred-dir-every-problem-at-once", _score_pred_dir(_everything_wrong),
         ("tennis/00002.png", "tennis/00099.png", "00003.jpg and 00003.png", "tennis/old/")),
    Case("listing-sample-id-outside", lambda t: _ucf_listing(t, lambda e: e.update(sample_id="../../outside/secret")),
         ("'../../outside/secret'", "points outside")),
    Case("listing-frame-outside-root", lambda t: _ucf_listing(t, lambda e: e.update(gt="../outside/secret.png")),
         ("'../outside/secret.png'", "points outside")),
    Case("manifest-entry-outside-root", _manifest_climbing_out, ("'../secret.png'", "points outside")),
    Case("data-root-is-a-file", lambda t: ["score", "--benchmark", "sample-tennis", "--method", "mean_fill",
                                          "--out", t / "r", "--data-root", GT], ("00001.png", "a file", "manifests/")),
    Case("manifest-entry-without-sha256", _manifest_without_sha256,
         ("sample-tennis.json", "entry 3", "sha256", "triptych manifest build")),
    Case("ssim-window-larger-than-frame", _small_frames, ("tiny.png", "40x40", "65x65", "smaller window")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_error(case, tmp_path, run_cli, monkeypatch):
    assert_clear_error(case, tmp_path, run_cli, monkeypatch)


@dataclass(frozen=True)
class Accepted:
    """An input triptych reads on purpose. ``setup`` returns (CLI args, reference): the reference is the
    args of the same measurement on the plain form of the input (its JSON aggregate must be equal), a known
    value (float), or the lines the command must print (tuple of str)."""

    id: str
    setup: Callable[[Path], tuple[list, list | float | tuple[str, ...]]]


def _pair_renamed(pred_name: str, gt_name: str):
    """Frames 00001 (prediction) and 00000 (ground truth) under new names, against the plain files."""
    def setup(tmp: Path) -> tuple[list, list]:
        for side, name, src in (("pred", pred_name, "00001.png"), ("gt", gt_name, "00000.png")):
            (tmp / side).mkdir()
            shutil.copy(FRAMES / src, tmp / side / name)
        return (_measure(tmp, tmp / "pred", tmp / "gt", "psnr", "amt"),
                _measure(tmp, FRAMES / "00001.png", FRAMES / "00000.png", "psnr", "amt"))
    return setup


def _float64_npy(tmp: Path) -> tuple[list, list]:
    frame = np.asarray(Image.open(FRAMES / "00001.png")).transpose(2, 0, 1).astype(np.float64) / 255
    np.save(tmp / "00001.npy", frame)
    return (_measure(tmp, tmp / "00001.npy", FRAMES / "00000.png", "psnr", "amt"),
            _measure(tmp, FRAMES / "00001.png", FRAMES / "00000.png", "psnr", "amt"))


def _npy_overshoot(tmp: Path) -> tuple[list, float]:
    """White ground truth, prediction 1.005 everywhere: kept as it is (not clamped), so E2FGVI's PSNR is
    20 log10(255 / (0.005 * 255)) = 20 log10(200) dB."""
    fake.grey(tmp / "white.png", 255, size=(64, 48))
    np.save(tmp / "white.npy", np.full((3, 48, 64), 1.005, np.float32))
    return _measure(tmp, tmp / "white.npy", tmp / "white.png", "psnr", "e2fgvi"), 20 * np.log10(200)


def _palette_mask(tmp: Path) -> tuple[list, list]:
    """Masks in palette mode whose index 0 is white (hole) and index 1 black: read by luminance, exactly
    as the same masks in mode L."""
    pred, gt = _frames(tmp)
    for folder in ("palette", "grey"):
        (tmp / folder).mkdir()
    for i in range(2):
        hole = np.asarray(Image.open(MASKS / f"{i:05d}.png").convert("L")) > 0
        Image.fromarray(np.where(hole, 255, 0).astype(np.uint8)).save(tmp / "grey" / f"{i:05d}.png")
        palette = Image.fromarray(np.where(hole, 0, 1).astype(np.uint8), mode="P")
        palette.putpalette([255, 255, 255, 0, 0, 0])
        palette.save(tmp / "palette" / f"{i:05d}.png")
    args = ["measure", "psnr_masked", "--variant", "hole", "--pred", pred, "--gt", gt, "--json", "--mask"]
    return args + [tmp / "palette"], args + [tmp / "grey"]


def _palette_masks_in_score(tmp: Path) -> tuple[list, tuple[str, ...]]:
    """The sample's masks saved in palette mode (index 0 white = hole): ``score`` reads them by luminance
    as ``measure`` does, so mean_fill scores the sample's published numbers (README: 22.05 dB / 0.768)."""
    root = _datasets_copy(tmp)
    for path in sorted((root / "samples/tennis/masks").glob("*.png")):
        hole = np.asarray(Image.open(path)) > 0
        palette = Image.fromarray(np.where(hole, 0, 1).astype(np.uint8), mode="P")
        palette.putpalette([255, 255, 255, 0, 0, 0])
        palette.save(path)
    _rebuild_manifest(root)
    return (["score", "--benchmark", "sample-tennis", "--method", "mean_fill", "--out", tmp / "r", "--data-root", root],
            ("psnr:e2fgvi v1  22.0518 dB  (n=24)", "ssim:win65 v1  0.767875   (n=24)"))


def _hidden_files(tmp: Path) -> tuple[list, tuple[str, ...]]:
    """System files in the data folders and the prediction folder: ignored, the prediction (the ground
    truth itself) scores inf dB and SSIM 1 on all 24 frames."""
    root = _datasets_copy(tmp)
    pred = _tennis_pred_dir(tmp)
    for folder in (root / "samples/tennis/frames", root / "samples/tennis/masks", pred, pred / "tennis"):
        (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
        (folder / ".ipynb_checkpoints").mkdir()
        shutil.copy(FRAMES / "00000.png", folder / ".ipynb_checkpoints/00000-checkpoint.png")
    return (["score", "--benchmark", "sample-tennis", "--pred-dir", pred, "--out", tmp / "r", "--data-root", root],
            ("psnr:e2fgvi v1  inf dB  (n=24)", "ssim:win65 v1  1   (n=24)"))


def _crlf_list(tmp: Path) -> tuple[list, tuple[str, ...]]:
    """A Vimeo90K ``tri_testlist.txt`` with Windows line ends lists the same triplets."""
    root = fake.make_vimeo90k(tmp / "vimeo", ["00001/0001", "00001/0002", "00078/0970"])
    listed = root / "tri_testlist.txt"
    listed.write_bytes(listed.read_bytes().replace(b"\n", b"\r\n"))
    out = tmp / "data/build/vfi"
    _standardize_vfi("vimeo90k/test", "vimeo90k", root, out)
    listing = json.loads((out / "vimeo90k-test.triplets.json").read_text())
    ids = tuple(t["sample_id"] for t in listing["triplets"])
    assert ids == ("00001/0001/im2", "00001/0002/im2", "00078/0970/im2")
    return ["manifest", "verify", out / "vimeo90k-test.manifest.json", root], ("9 files match",)


ACCEPTED = [
    Accepted("float64-npy-prediction", _float64_npy),
    Accepted("npy-slightly-outside-0-1-kept", _npy_overshoot),
    Accepted("uppercase-png-suffix", _pair_renamed("00000.PNG", "00000.png")),
    Accepted("unicode-file-names", _pair_renamed("bild-ä_東京.png", "bild-ä_東京.png")),
    Accepted("palette-mask-read-by-luminance", _palette_mask),
    Accepted("palette-masks-in-score", _palette_masks_in_score),
    Accepted("hidden-system-files-ignored", _hidden_files),
    Accepted("crlf-list-file", _crlf_list),
]


def _aggregate(run_cli, args: list) -> float:
    code, out, err = run_cli(*args)
    assert code == 0, err
    return json.loads(out)["aggregate"]["value"]


@pytest.mark.parametrize("case", ACCEPTED, ids=[c.id for c in ACCEPTED])
def test_accepted_input_gives_the_right_number(case, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    args, reference = case.setup(tmp_path)
    if isinstance(reference, tuple):
        code, out, err = run_cli(*args)
        assert code == 0, err
        for line in reference:
            assert line in out, f"{line!r} not in:\n{out}"
    elif isinstance(reference, list):
        assert _aggregate(run_cli, args) == _aggregate(run_cli, reference)
    else:
        assert _aggregate(run_cli, args) == pytest.approx(reference, abs=1e-4)
