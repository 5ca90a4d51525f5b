"""The catalogue of bad inputs (docs/bad_inputs.md): each gets a clear error naming the file or value and
the fix, through the real CLI, and results already written survive.

Each case builds its bad input in a temporary folder from the embedded sample, runs ``triptych ...`` and
checks exit status 2, the words that must appear on stderr, and that stdout stays empty.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bad_input_cases import (FRAMES, SAMPLE, Case, assert_clear_error, _datasets_copy, _frames, _garbage, _image_case, _mask_case,
                             _measure, _npy_case, _portrait_folder_without_class_word, _pred_dir_of, _truncate)
from conftest import REPO
from triptych.errors import TriptychError
from triptych.results import read_run
from triptych.scoring import score

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
    Case("uint8-prediction", _npy_case(np.zeros((3, 240, 432), np.uint8)), ("pred.npy", "uint8", "float32 or float64")),
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
                                         "--data-root", t / "nowhere"], ("nowhere", "no manifests/ folder there")),
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
    Case("metric-needs-an-input-the-benchmark-lacks",
         lambda t: ["score", "--benchmark", "sample-tennis", "--method", "mean_fill", "--metric", "ewarp:files",
                    "--out", t / "r"], ("ewarp:files needs flow_dir", "a variant or method that does without it")),
    Case("frame-too-small-for-ms-ssim",
         lambda t: (Image.open(FRAMES / "00000.png").crop((0, 0, 200, 150)).save(t / "small.png"),
                    _measure(t, t / "small.png", t / "small.png", metric="ms_ssim", variant="pytorch_msssim"))[1],
         ("small.png", "200x150", "at least 161")),
    Case("weights-for-metric-without-network",
         lambda t: [*_measure(t, FRAMES, FRAMES), "--weights", FRAMES / "00000.png"],
         ("psnr:e2fgvi has no network", "drop --weights")),
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


def _catalogue_sections() -> dict[str, list[str]]:
    """docs/bad_inputs.md, one section per test module: ``## Title (`tests/bad_inputs/test_bad_inputs_x.py`)`` followed
    by a table whose first column holds the case ids, in the module's order."""
    text = (REPO / "docs/bad_inputs.md").read_text(encoding="utf-8")
    sections: dict[str, list[str]] = {}
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        title, _, body = block.partition("\n")
        named = re.search(r"`(tests/bad_inputs/test_bad_inputs\w*\.py)`", title)
        if named:
            key = named.group(1) + (" ACCEPTED" if "accepted" in title.lower() else "")
            sections[key] = re.findall(r"^\| `([a-z0-9-]+)` \|", body, flags=re.M)
    return sections


def test_the_catalogue_documents_every_case_module():
    """Every ``tests/bad_inputs/test_bad_inputs*.py`` module has its section, with its case ids in order, and no id is
    used twice across the catalogue."""
    import importlib

    sections = _catalogue_sections()
    modules = sorted(p.name for p in (REPO / "tests/bad_inputs").glob("test_bad_inputs*.py"))
    assert sorted({k.split()[0].removeprefix("tests/bad_inputs/") for k in sections}) == modules
    all_ids: list[str] = []
    for key, ids in sections.items():
        path, _, accepted = key.partition(" ")
        module = importlib.import_module(Path(path).stem)
        cases = getattr(module, "ACCEPTED" if accepted else "CASES")
        assert ids == [c.id for c in cases], path
        all_ids += ids
    assert len(all_ids) == len(set(all_ids)), "a case id is used twice"
    assert len(sections["tests/bad_inputs/test_bad_inputs.py"]) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_error(case, tmp_path, run_cli, monkeypatch):
    assert_clear_error(case, tmp_path, run_cli, monkeypatch)


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
