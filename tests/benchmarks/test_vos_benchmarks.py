"""The ``davis`` / ``youtube-vos`` benchmarks (thesis table 3.1) scored end to end from ``standardize_vos``
output: a tiny DAVIS laid out as E2FGVI ships it (``JPEGImages/<video>.zip``, ``test_masks/<video>/``,
``test.json``), reduced to two videos with subset mode, standardized under the name the benchmark reads,
scored with ``triptych score --benchmark davis --subset``. Known answers: a prediction that is the ground
truth plus 10 grey levels scores PSNR 20 log10(255 / sqrt(MSE)) with MSE computed here from the written
hole masks; the run records the subset and never pairs."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vos_fake_layouts import make_e2fgvi_davis
from triptych.manifests import read_manifest, verify_manifest
from triptych.pipelines.standardize_vos import main as standardize_vos
from triptych.results import read_run, read_samples

SUBSET = ("bear", "camel")


def vfid_with_rule_weights(pairs, *, batch_stats: bool):
    """``vfid:e2fgvi`` on an I3D with rule-built weights (docs/weights_rule.md): VFID offline."""
    from triptych.metrics.i3d import build_i3d
    from triptych.metrics.vfid import vfid
    from triptych.weights_rule import apply_weights_rule

    model = build_i3d()
    state = apply_weights_rule(model, seed=0, gain=1.0)
    return vfid(pairs, batch_stats=batch_stats, model=model, record={"state_sha256": state}, cache=None)


@pytest.fixture()
def vfid_rule(monkeypatch):
    """Registers ``vfid:rule`` (``vfid:e2fgvi`` on rule weights) for one test."""
    from triptych.inputs import Inputs
    from triptych.registry import registry

    vfid = registry().metric("vfid")
    rule = dataclasses.replace(vfid.variant("e2fgvi"), name="rule", callable="test_vos_benchmarks:vfid_with_rule_weights",
                               weights=(), inputs=Inputs())  # rule weights: no user file
    monkeypatch.setitem(registry().metrics, "vfid", dataclasses.replace(vfid, variants={**vfid.variants, "rule": rule}))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """A data root whose build/vos holds the DAVIS subset (bear, camel) as ``davis-test``."""
    base = tmp_path_factory.mktemp("davis")
    raw = make_e2fgvi_davis(base / "E2FGVI/datasets/davis")
    data = base / "datasets"
    standardize_vos(["--name", "davis-test", "--layout", "e2fgvi", "--root", str(raw), "--subset", ",".join(SUBSET),
                     "--out", str(data / "build/vos")])
    return data


def test_subset_mode_standardizes_the_named_videos_and_records_them(data_root: Path) -> None:
    report = json.loads((data_root / "build/vos/davis-test-report.json").read_text())
    assert report["standardized_videos"] == list(SUBSET) and report["frames"] == 5
    assert report["subset"] == {"count": 2, "of": 3, "unit": "videos", "ids": list(SUBSET)}
    for variant in ("e2fgvi", "propainter"):
        manifest = read_manifest(data_root / f"build/vos/davis-test-{variant}.json")
        assert manifest.groups == {"bear": 3, "camel": 2}
        verify_manifest(manifest, data_root / "build/vos/davis-test" / variant)


def test_a_second_split_keeps_the_first(data_root: Path, tmp_path: Path) -> None:
    raw = make_e2fgvi_davis(tmp_path / "yt")
    before = read_manifest(data_root / "build/vos/davis-test-e2fgvi.json")
    standardize_vos(["--name", "youtube-vos-test", "--layout", "e2fgvi", "--root", str(raw), "--subset", "blackswan",
                     "--variants", "e2fgvi", "--out", str(data_root / "build/vos")])
    verify_manifest(before, data_root / "build/vos/davis-test/e2fgvi")  # every file of the first split is intact
    assert read_manifest(data_root / "build/vos/youtube-vos-test-e2fgvi.json").groups == {"blackswan": 2}


def test_an_unknown_subset_video_is_refused(tmp_path: Path) -> None:
    from triptych.errors import InputError

    raw = make_e2fgvi_davis(tmp_path / "davis")
    with pytest.raises(InputError) as info:
        standardize_vos(["--name", "davis-test", "--layout", "e2fgvi", "--root", str(raw), "--subset", "bear,beer",
                         "--out", str(tmp_path / "out")])
    assert "beer" in info.value.message and "bear" in info.value.fix


def _offset_prediction(data_root: Path, out: Path, variant: str) -> float:
    """Ground truth + 10 (clipped) as the prediction folder; returns the pooled PSNR it must score, from
    the written frames and hole masks alone."""
    root = data_root / "build/vos/davis-test" / variant
    values = []
    for video in SUBSET:
        (out / video).mkdir(parents=True, exist_ok=True)
        for frame in sorted((root / "frames" / video).glob("*.png")):
            gt = np.asarray(Image.open(frame)).astype(np.int64)
            pred = np.minimum(gt + 10, 255)
            Image.fromarray(pred.astype(np.uint8)).save(out / video / frame.name)
            hole = np.asarray(Image.open(root / "masks" / video / frame.name))[..., None] > 0
            mse = float(np.mean(((pred - gt) * hole) ** 2))
            values.append(20 * math.log10(255 / math.sqrt(mse)))
    return float(np.mean(values))


def test_davis_scores_a_subset_only_when_asked_and_records_it(data_root: Path, tmp_path: Path, run_cli,
                                                              vfid_rule) -> None:
    expected = _offset_prediction(data_root, tmp_path / "pred", "e2fgvi")
    metrics = ("--metric", "psnr:e2fgvi", "--metric", "ssim:win65", "--metric", "vfid:rule", "--metric", "ewarp:dis")
    args = ("score", "--benchmark", "davis", "--pred-dir", tmp_path / "pred", "--data-root", data_root,
            "--out", tmp_path / "results", *metrics)
    code, out, err = run_cli(*args)
    assert code == 2 and out == "" and "2 video(s) / 5 frame(s) standardized" in err and "--subset" in err
    code, out, err = run_cli(*args, "--subset")
    assert code == 0, err
    assert "subset 2/50 videos of split 'test-50'" in err
    run_dir = next((tmp_path / "results").iterdir())
    run = read_run(run_dir)
    assert (run["benchmark"], run["split"], run["benchmark_variant"]) == ("davis", "test-50", "e2fgvi")
    assert run["data"]["subset"]["count"] == 2 and run["data"]["subset"]["of"] == 50
    assert run["data"]["subset"]["ids"] == list(SUBSET)
    summary = {m["metric"]: m for m in run["metrics"]}
    assert float(summary["psnr"]["aggregate"]["value"]) == pytest.approx(expected, abs=1e-9)
    assert set(summary["psnr"]["per_video"]) == set(SUBSET) and summary["psnr"]["aggregate"]["n"] == 5
    rows = read_samples(run_dir)
    assert set(rows.split) == {"test-50"} and set(rows.benchmark) == {"davis"}
    assert len(rows[rows.metric == "ewarp"]) == 2 and len(rows[rows.metric == "vfid"]) == 1
    assert float(summary["vfid"]["aggregate"]["value"]) >= 0
    # the leaderboard shows it, unpaired, with the reason
    code, out, _ = run_cli("leaderboard", "show", "--results", tmp_path / "results", "--task", "video_inpainting")
    assert code == 0 and "unpaired [1]" in out and "[1] subset 2/50 of split 'test-50': only a full split pairs" in out


def test_the_propainter_variant_reads_its_own_frames(data_root: Path, tmp_path: Path, run_cli) -> None:
    expected = _offset_prediction(data_root, tmp_path / "pred", "propainter")
    code, out, err = run_cli("score", "--benchmark", "davis", "--benchmark-variant", "propainter", "--pred-dir",
                             tmp_path / "pred", "--data-root", data_root, "--out", tmp_path / "results",
                             "--metric", "psnr:e2fgvi", "--subset")
    assert code == 0, err
    run = read_run(next((tmp_path / "results").iterdir()))
    assert run["benchmark_variant"] == "propainter" and run["data"]["root"].endswith("davis-test/propainter")
    assert float(run["metrics"][0]["aggregate"]["value"]) == pytest.approx(expected, abs=1e-9)


def test_davis_without_standardized_data_says_how_to_build_it(tmp_path: Path, run_cli) -> None:
    code, out, err = run_cli("score", "--benchmark", "youtube-vos", "--method", "mean_fill", "--data-root", tmp_path,
                             "--out", tmp_path / "r")
    assert code == 2 and out == "" and "youtube-vos-test" in err and "standardize_vos" in err


def test_a_method_runs_on_the_davis_subset(data_root: Path, tmp_path: Path, run_cli) -> None:
    code, out, err = run_cli("score", "--benchmark", "davis", "--method", "mean_fill", "--data-root", data_root,
                             "--out", tmp_path / "results", "--metric", "psnr:e2fgvi", "--subset")
    assert code == 0, err
    run = read_run(next((tmp_path / "results").iterdir()))
    assert run["method"] == "mean_fill" and run["metrics"][0]["aggregate"]["n"] == 5
