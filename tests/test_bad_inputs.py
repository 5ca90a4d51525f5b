"""The catalogue of bad inputs (docs/bad_inputs.md): each gets a clear error naming the file or value and
the fix, through the real CLI, and results already written survive.

Each case builds its bad input in a temporary folder from the embedded sample, runs ``triptych ...`` and
checks exit status 2, the words that must appear on stderr, and that stdout stays empty.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from triptych.errors import TriptychError
from triptych.results import read_run
from triptych.scoring import score

SAMPLE = REPO / "datasets/samples"
FRAMES = SAMPLE / "tennis/frames"


def _frames(tmp: Path, n: int = 2) -> tuple[Path, Path]:
    for side in ("pred", "gt"):
        (tmp / side).mkdir()
        for i in range(n):
            shutil.copy(FRAMES / f"{i:05d}.png", tmp / side / f"{i:05d}.png")
    return tmp / "pred", tmp / "gt"


def _measure(tmp: Path, pred: Path, gt: Path, metric: str = "psnr", variant: str = "e2fgvi") -> list:
    return ["measure", metric, "--variant", variant, "--pred", pred, "--gt", gt, "--json"]


def _image_case(transform: Callable[[Path], None]) -> Callable[[Path], list]:
    def setup(tmp: Path) -> list:
        pred, gt = _frames(tmp)
        transform(pred / "00001.png")
        return _measure(tmp, pred, gt)
    return setup


def _npy_case(array: np.ndarray) -> Callable[[Path], list]:
    def setup(tmp: Path) -> list:
        np.save(tmp / "pred.npy", array)
        return _measure(tmp, tmp / "pred.npy", FRAMES / "00000.png", variant="amt")
    return setup


def _datasets_copy(tmp: Path) -> Path:
    root = tmp / "datasets"
    shutil.copytree(REPO / "datasets", root)
    return root


def _mask_case(fill: int) -> Callable[[Path], list]:
    def setup(tmp: Path) -> list:
        root = _datasets_copy(tmp)
        mask = root / "samples/tennis/masks/00004.png"
        Image.fromarray(np.full((240, 432), fill, np.uint8)).save(mask)
        _rebuild_manifest(root)
        return ["score", "--benchmark", "sample-tennis", "--method", "mean_fill", "--out", tmp / "r",
                "--data-root", root]
    return setup


def _rebuild_manifest(root: Path, name: str = "sample-tennis") -> None:
    """The data changed on purpose: make its manifest agree, so the loader's own checks are reached."""
    from triptych.manifests import build_manifest, write_manifest

    base = root / ("samples" if name == "sample-tennis" else "samples/portraits")
    pattern = "tennis/**/*" if name == "sample-tennis" else "**/*"
    files = sorted(p.relative_to(base).as_posix() for p in base.glob(pattern) if p.is_file())
    write_manifest(build_manifest(name, base, files, {}), root / f"manifests/{name}.json")


def _portrait_folder_without_class_word(tmp: Path) -> list:
    root = _datasets_copy(tmp)
    (root / "samples/portraits/newton_man").rename(root / "samples/portraits/newton")
    _rebuild_manifest(root, "sample-portraits")
    return ["score", "--benchmark", "sample-portraits", "--method", "reference_copy", "--out", tmp / "r",
            "--data-root", root]


def _pred_dir_of(tmp: Path, layout: dict[str, Path]) -> Path:
    for rel, src in layout.items():
        (tmp / "pred" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, tmp / "pred" / rel)
    return tmp / "pred"


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[Path], list]
    expect: tuple[str, ...]


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:4000])


def _garbage(p: Path) -> None:
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)


CASES = [
    Case("missing-frame", lambda t: (lambda p, g: (Path(p / "00001.png").unlink(), _measure(t, p, g))[1])(*_frames(t)),
         ("00001.png", "missing")),
    Case("extra-prediction", lambda t: (lambda p, g: (shutil.copy(FRAMES / "00005.png", p / "00005.png"),
                                                      _measure(t, p, g))[1])(*_frames(t)), ("00005.png", "without ground truth")),
    Case("size-mismatch", _image_case(lambda p: Image.open(p).resize((400, 240)).save(p)), ("00001.png", "400x240")),
    Case("grayscale", _image_case(lambda p: Image.open(p).convert("L").save(p)), ("00001.png", "grayscale")),
    Case("rgba", _image_case(lambda p: Image.open(p).convert("RGBA").save(p)), ("00001.png", "alpha")),
    Case("16-bit", _image_case(lambda p: Image.fromarray(np.asarray(Image.open(p).convert("L")).astype(np.uint16) * 257)
                               .save(p)), ("00001.png", "8-bit")),
    Case("truncated-png", _image_case(_truncate), ("00001.png", "truncated")),
    Case("corrupt-png", _image_case(_garbage), ("00001.png", "cannot decode")),
    Case("nan-prediction", _npy_case(np.full((3, 240, 432), np.nan, np.float32)), ("pred.npy", "NaN")),
    Case("inf-prediction", _npy_case(np.full((1, 3, 240, 432), np.inf, np.float32)), ("pred.npy", "Inf")),
    Case("float64-prediction", _npy_case(np.zeros((3, 240, 432), np.float64)), ("pred.npy", "float64")),
    Case("hwc-prediction", _npy_case(np.zeros((240, 432, 3), np.float32)), ("pred.npy", "(3, H, W)")),
    Case("empty-mask", _mask_case(0), ("00004.png", "no hole")),
    Case("all-ones-mask", _mask_case(255), ("00004.png", "whole frame")),
    Case("unknown-metric", lambda t: _measure(t, FRAMES, FRAMES, metric="pnsr"), ("'pnsr'", "'psnr'")),
    Case("unknown-variant", lambda t: _measure(t, FRAMES, FRAMES, metric="ssim", variant="win7"), ("'win7'", "win65")),
    Case("no-variant", lambda t: ["measure", "ssim", "--pred", FRAMES, "--gt", FRAMES], ("variants and no default", "--variant win65")),
    Case("unknown-benchmark", lambda t: ["score", "--benchmark", "davis-50", "--method", "mean_fill", "--out", t],
         ("'davis-50'", "triptych list benchmarks")),
    Case("unknown-method", lambda t: ["score", "--benchmark", "sample-tennis", "--method", "mean-fill", "--out", t],
         ("'mean-fill'", "'mean_fill'")),
    Case("unknown-benchmark-variant", lambda t: ["score", "--benchmark", "sample-tennis", "--method", "mean_fill",
                                                 "--benchmark-variant", "propaint", "--out", t], ("'propaint'", "e2fgvi")),
    Case("method-of-another-task", lambda t: ["score", "--benchmark", "sample-triplets", "--method", "mean_fill",
                                              "--out", t], ("mean_fill", "video_inpainting")),
    Case("missing-data-root", lambda t: ["score", "--benchmark", "sample-tennis", "--method", "mean_fill", "--out", t,
                                         "--data-root", t / "nowhere"], ("nowhere", "manifest not found")),
    Case("changed-data-file", lambda t: (lambda root: (_garbage(root / "samples/tennis/frames/00002.png"),
                                                       ["score", "--benchmark", "sample-tennis", "--method", "mean_fill",
                                                        "--out", t / "r", "--data-root", root])[1])(_datasets_copy(t)),
         ("00002.png", "changed since the manifest")),
    Case("pred-dir-of-another-benchmark",
         lambda t: ["score", "--benchmark", "sample-tennis", "--pred-dir",
                    _pred_dir_of(t, {"tennis/00001.png": FRAMES / "00001.png"}).parent / "pred" / "tennis",
                    "--out", t / "r"], ("laid out for another benchmark", "<video>/<frame>.png")),
    Case("pred-dir-missing-triplet", lambda t: ["score", "--benchmark", "sample-triplets", "--pred-dir",
                                                _pred_dir_of(t, {"tennis/00001.png": FRAMES / "00001.png"}),
                                                "--out", t / "r"], ("00006.png", "prediction missing")),
    Case("unused-option", lambda t: _measure(t, FRAMES, FRAMES) + ["--mask", SAMPLE / "tennis/masks"], ("--mask",)),
    Case("file-vs-folder", lambda t: _measure(t, FRAMES / "00000.png", FRAMES), ("both be files or both be folders",)),
    Case("portrait-folder-without-class-word", _portrait_folder_without_class_word, ("'newton'", "newton_man")),
    Case("missing-reference-folder", lambda t: ["measure", "face_sim", "--variant", "dlib", "--pred",
                                                SAMPLE / "portraits/newton_man/newton_0.jpg", "--gt", t / "nothing-here"],
         ("nothing-here", "no such file")),
    Case("image-without-a-face",
         lambda t: (Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(t / "grey.png"),
                    ["measure", "face_sim", "--variant", "dlib", "--pred", t / "grey.png", "--gt",
                     SAMPLE / "portraits/newton_man"])[1], ("grey.png", "no face")),
    Case("unknown-weights-name", lambda t: ["weights", "path", "i3d"], ("'i3d'", "i3d_rgb_imagenet")),
    Case("weights-wrong-file", lambda t: (_garbage(t / "inception.pth"),
                                          ["weights", "import", "inception_fid", t / "inception.pth"])[1],
         ("inception.pth", "expected 95628359", "triptych weights import inception_fid")),
]


def test_the_catalogue_is_documented():
    table = (REPO / "docs/bad_inputs.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| `([a-z0-9-]+)` \|", table, flags=re.M)
    assert documented == [c.id for c in CASES]
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_error(case, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    args = case.setup(tmp_path)
    code, out, err = run_cli(*args)
    assert code == 2, err
    assert out == ""
    assert err.startswith("error: ") or "\nerror: " in err
    for expected in case.expect:
        assert expected in err, f"{expected!r} not in:\n{err}"


def test_a_full_disk_is_reported_and_finished_results_survive(tmp_path):
    """A real ENOSPC: the results folder on a 64 KiB tmpfs."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        with pytest.raises(TriptychError) as info:
            score("sample-portraits", mount, method="reference_copy")
        (run,) = list(mount.iterdir())
        assert "No space left on device" in info.value.message and "free some disk space" in info.value.fix
        parts = sorted((run / "parts").glob("*.parquet"))
        assert parts, "some samples fit before the disk filled up"
        assert read_run(run)["status"] in ("failed", "running")
        assert not list(mount.rglob("*.tmp")), "no half-written file is left behind"
    finally:
        subprocess.run(["umount", "--lazy", str(mount)])
