"""Shared builders for the bad-input catalogue (docs/bad_inputs.md): the ``Case`` record, copies of the
embedded sample and small corruptions. Each ``tests/test_bad_inputs*.py`` module lists its own ``CASES``
(and, where it has them, ``ACCEPTED``) and documents them in its own section of the catalogue."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from conftest import REPO

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

    def assert_refused(self, code: int, out: str, err: str) -> None:
        """The catalogue's promise: exit 2, nothing on stdout, an ``error:`` naming every expected word."""
        assert code == 2, err
        assert out == ""
        assert err.startswith("error: ") or "\nerror: " in err
        assert "Traceback" not in err
        for expected in self.expect:
            assert expected in err, f"{expected!r} not in:\n{err}"


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:4000])


def _garbage(p: Path) -> None:
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)


def assert_clear_error(case: Case, tmp_path: Path, run_cli, monkeypatch) -> None:
    """Run the case through the CLI with a private weights cache and check the catalogue's promise."""
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    case.assert_refused(*run_cli(*case.setup(tmp_path)))
