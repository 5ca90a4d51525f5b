"""Shared test helpers: where the golden fixtures are, and how to run the CLI in-process."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRIPTYCH_SHARED", REPO.parent / "shared"))
FIXTURES = SHARED / "fixtures"


def _require_shared() -> None:
    if not FIXTURES.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"golden fixtures not found at {FIXTURES}: CI must run with ../shared beside the clone")
        pytest.skip(f"golden fixtures not found at {FIXTURES} (set TRIPTYCH_SHARED)")


def fake_distribution(root: Path, name: str, group: str, entry: str, module: str, source: str) -> None:
    """A real installed distribution under ``root`` (put it on sys.path): a module and a dist-info folder
    whose entry point ``entry`` in ``group`` is ``module:entries``."""
    (root / f"{module}.py").write_text(source)
    info = root / f"{name.replace('-', '_')}-9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 9.9\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry} = {module}:entries\n")


@pytest.fixture()
def plugin_site(tmp_path, monkeypatch):
    """A folder on sys.path for ``fake_distribution``; the registry is read again with it, and without it
    after the test."""
    from triptych.registry import registry

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    registry.cache_clear()
    before = set(sys.modules)
    yield site
    monkeypatch.undo()
    for module in [m for m in sys.modules if m not in before and (site / f"{m}.py").exists()]:
        sys.modules.pop(module, None)
    registry.cache_clear()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    _require_shared()
    return FIXTURES


@pytest.fixture(scope="session")
def inpainting_expected(fixtures_dir: Path) -> dict:
    return json.loads((fixtures_dir / "inpainting/tennis/expected.json").read_text())


@pytest.fixture(scope="session")
def vfi_expected(fixtures_dir: Path) -> dict:
    return json.loads((fixtures_dir / "vfi/expected.json").read_text())


@pytest.fixture()
def run_cli(capsys):
    """Run ``triptych ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from triptych.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


VFI_ENTRIES = ("pred_png_vs_gt", "pred_float_unrounded_vs_gt", "i0_vs_gt")


def vfi_triplet_cases(fixtures_dir: Path, vfi_expected: dict, entry: str):
    """(triplet record, prediction, ground truth) for each fixture triplet under one expected.json entry:
    the stored pred.png, the float32 unrounded blend (img2tensor(i0) + img2tensor(i1)) / 2, or i0."""
    import numpy as np

    from triptych.media import read_rgb

    triplets = vfi_expected["metric_fixture"]["triplets"]
    assert len(triplets) == 3
    for triplet in triplets:
        folder = fixtures_dir / "vfi" / triplet["name"]
        gt, i0, i1 = (read_rgb(folder / f"{n}.png") for n in ("gt", "i0", "i1"))
        pred = {
            "pred_png_vs_gt": lambda: read_rgb(folder / "pred.png"),
            "pred_float_unrounded_vs_gt": lambda: (i0.astype(np.float32) / 255 + i1.astype(np.float32) / 255) / 2,
            "i0_vs_gt": lambda: i0,
        }[entry]()
        yield triplet, pred, gt


def long_tennis_video(root: Path, n: int) -> tuple[Path, Path]:
    """A datasets folder in the sample-tennis layout with an n-frame video, and a prediction folder."""
    sample = REPO / "datasets/samples/tennis"
    data = root / "datasets"
    pred = root / "pred/tennis"
    for sub in ("frames", "masks"):
        (data / "samples/tennis" / sub).mkdir(parents=True)
    pred.mkdir(parents=True)
    for i in range(n):
        src = f"{i % 24:05d}.png"
        for sub in ("frames", "masks"):
            os.link(sample / sub / src, data / "samples/tennis" / sub / f"{i:05d}.png")
        os.link(sample / "frames" / f"{(i + 1) % 24:05d}.png", pred / f"{i:05d}.png")
    subprocess.run([str(Path(sys.executable).parent / "triptych"), "manifest", "build", str(data / "samples"),
                    "--name", "sample-tennis", "--include", "tennis/**/*",
                    "--out", str(data / "manifests/sample-tennis.json")], check=True, capture_output=True)
    return data, root / "pred"


@functools.lru_cache(maxsize=1)
def rule_inception():
    """The FID Inception with weights built by the weights rule (docs/weights_rule.md): FID / KID offline."""
    import torch

    from triptych.metrics.fid import FidInception, FidNetwork
    from triptych.weights_rule import apply_weights_rule

    torch.set_num_threads(1)
    model = FidInception()
    return FidNetwork(model.eval(), {"name": "weights-rule:inception_fid", "path": None,
                                     "sha256": apply_weights_rule(model.net, 0, 1.0)})


def kid_with_rule_weights(real, generated, *, subsets: int, subset_size: int, seed: int):
    """``kid:clean`` on the rule-weight Inception: a set metric that runs offline (registered by tests as
    ``conftest:kid_with_rule_weights``)."""
    from triptych.metrics.kid import kid_clean

    return kid_clean(real, generated, network=rule_inception(), subsets=subsets, subset_size=subset_size, seed=seed)


# Runs a command from a small Python process and prints its exit code and the command's peak RSS (KiB).
# The command must not be forked from pytest itself: Linux keeps the parent's RSS high-water mark across
# fork + exec, so a child of a large test process would report that process's peak, not its own.
_PEAK_RSS_LAUNCHER = ("import json, resource, subprocess, sys; "
                      "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
                      "print(json.dumps([code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")


def run_peak_rss(args: list[str]) -> tuple[int, str, float]:
    """Run a command: (exit code, the end of its stderr, its own peak RSS in MiB), measured by a small
    launcher process (see ``_PEAK_RSS_LAUNCHER``)."""
    done = subprocess.run([sys.executable, "-c", _PEAK_RSS_LAUNCHER, *args], capture_output=True, text=True)
    code, max_rss_kib = json.loads(done.stdout.strip().splitlines()[-1])
    return code, done.stderr[-3000:], max_rss_kib / 1024


def fill_with_references(out: Path, portraits: Path) -> list[dict]:
    """Write each image of a ``personalization init`` layout as one of its identity's reference photos
    (reference ``seed mod n``, pixels unchanged, PNG); the prompts.csv rows, each with its ``source``."""
    import csv

    from PIL import Image

    from triptych.media import read_rgb

    with (out / "prompts.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        refs = row["references"].split(";")
        row["source"] = portraits / refs[int(row["seed"]) % len(refs)]
        Image.fromarray(read_rgb(row["source"])).save(out / row["path"], compress_level=1)
    return rows


@pytest.fixture()
def kid_rule(monkeypatch):
    """Registers ``kid:rule`` (``kid:clean`` on the rule-weight Inception) for one test; returns ``kid:clean``."""
    import dataclasses

    from triptych.inputs import Inputs
    from triptych.registry import registry

    kid = registry().metric("kid")
    clean = kid.variant("clean")
    rule = dataclasses.replace(clean, name="rule", callable="conftest:kid_with_rule_weights", weights=(),
                               inputs=Inputs())  # its network is fixed: no user trunk
    monkeypatch.setitem(registry().metrics, "kid", dataclasses.replace(kid, variants={**kid.variants, "rule": rule}))
    return clean

