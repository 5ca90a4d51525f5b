"""Bring your own method: plugins through entry points, the Python API, and the three example packages."""

from __future__ import annotations

import json
import os
from importlib.metadata import PackageNotFoundError, version

import pytest
import torch

import triptych
from conftest import REPO, fake_distribution
from triptych.errors import TriptychError
from triptych.registry import registry

FRAME = REPO / "datasets/samples/tennis/frames/00000.png"
EXAMPLES = {"blur-fill": ("triptych-blur-fill", "sample-tennis"),
            "dis-warp": ("triptych-flow-interp", "sample-triplets"),
            "copy-jitter": ("triptych-copy-jitter", "sample-portraits")}


def _installed(distribution: str) -> bool:
    try:
        version(distribution)
        return True
    except PackageNotFoundError:
        if os.environ.get("CI"):
            pytest.fail(f"{distribution} is not installed: .ci/run installs the examples/ packages")
        pytest.skip(f"{distribution} not installed (pip install -e examples/...)")


@pytest.mark.parametrize("method", sorted(EXAMPLES))
def test_an_installed_example_scores_end_to_end_and_records_its_distribution(method, tmp_path, run_cli):
    distribution, benchmark = EXAMPLES[method]
    _installed(distribution)
    assert registry().method(method).plugin == (distribution, version(distribution))
    code, out, err = run_cli("score", "--benchmark", benchmark, "--method", method, "--out", tmp_path)
    assert code == 0, err
    results = triptych.Results(next(tmp_path.iterdir()))
    assert results.run["plugins"][f"method {method}"] == {"distribution": distribution, "version": version(distribution)}
    assert len(results.samples) > 0 and results.samples.value.notna().all()
    assert set(results.samples.method_version) == {f"1 ({distribution} {version(distribution)})"}
    code, out, _ = run_cli("leaderboard", "show", "--results", tmp_path)
    assert code == 0 and f"{method} v1 ({distribution} {version(distribution)})" in out.replace("\n", "")


def test_blur_fill_beats_the_mean_fill_floor(tmp_path):
    _installed("triptych-blur-fill")
    blur = triptych.evaluate("sample-tennis", "blur-fill", out=tmp_path)
    mean = triptych.evaluate("sample-tennis", "mean_fill", out=tmp_path)
    assert blur["psnr"] > mean["psnr"]


class _FirstFrame:
    """An Interpolator defined in the test: returns frame 0."""

    version = "0.3"

    def interpolate(self, frame0: torch.Tensor, frame1: torch.Tensor, t: float) -> torch.Tensor:
        return frame0.clone()


def test_evaluate_scores_a_python_object_and_a_metric_override(tmp_path, vfi_expected):
    results = triptych.evaluate("sample-triplets", _FirstFrame(), out=tmp_path)
    assert results.run["method"] == "_FirstFrame" and results.run["method_version"] == "0.3"
    assert results.run["method_source"].startswith("python object")
    triplet = next(t for t in vfi_expected["metric_fixture"]["triplets"] if t["name"] == "triplet_010_011_012")
    row = results.samples.query("sample_id == 'tennis/00011' and metric == 'psnr'")
    assert row.value.item() == pytest.approx(triplet["i0_vs_gt"]["psnr"], abs=vfi_expected["suggested_tolerances"]["psnr_db_abs"])
    only = triptych.evaluate("sample-triplets", "linear_blend", metrics=["psnr:e2fgvi"], out=tmp_path)
    assert list(only.aggregates().metric_variant) == ["e2fgvi"]
    with pytest.raises(TriptychError, match="names no variant"):
        triptych.evaluate("sample-triplets", "linear_blend", metrics=["ssim"], out=tmp_path)
    with pytest.raises(TriptychError, match="does not implement Inpainter"):
        triptych.evaluate("sample-tennis", _FirstFrame(), out=tmp_path)


def test_a_plugin_name_clash_is_refused_with_both_sources_only_where_the_name_is_used(plugin_site, run_cli):
    fake_distribution(plugin_site, "clashing-plugin", "triptych.methods", "clash", "clashing_plugin",
                      "def entries():\n    return {'mean_fill': {'task': 'video_inpainting', 'version': 1, "
                      "'description': 'd', 'callable': 'clashing_plugin:entries'}}\n")
    with pytest.raises(TriptychError, match=r"clashing-plugin 9\.9.*'mean_fill' is already declared in "
                                            r"triptych\.baselines/specs/inpainting\.yaml"):
        registry().method("mean_fill")
    assert registry().method("telea").name == "telea"  # the rest of the registry works
    code, out, err = run_cli("list", "methods", "--json")
    assert code == 0 and "telea" in out and "broken plugin, not listed (declares mean_fill)" in err


def test_a_broken_plugin_is_named_where_used_and_breaks_nothing_else(plugin_site, run_cli):
    fake_distribution(plugin_site, "broken-plugin", "triptych.metrics", "broken", "broken_plugin",
                      "def entries():\n    raise RuntimeError('boom')\n")
    with pytest.raises(TriptychError, match="unknown metric 'brokenmetric'.*broken-plugin 9.9.*failed to load \\(boom\\)"):
        registry().metric("brokenmetric")
    code, out, err = run_cli("measure", "psnr", "--variant", "e2fgvi", "--pred", FRAME, "--gt", FRAME, "--json")
    assert code == 0 and json.loads(out)["aggregate"]["n"] == 1, err
