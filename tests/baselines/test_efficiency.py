"""Efficiency figures: AMT parameter counts (fixture + published), the FLOP convention on a hand-counted
module, and ``triptych efficiency`` at a small size (720p only in tests/perf)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from triptych.baselines.amt import AMTInterpolator, build_amt
from triptych.baselines.efficiency import count_parameters, measure_efficiency, parse_size
from triptych.baselines.vfi import DISFlow
from triptych.errors import InputError
from triptych.results import read_run, read_samples


@pytest.mark.parametrize("variant", ["S", "L", "G"])
def test_amt_parameter_counts_equal_the_reference_and_the_published_figures(vfi_expected, variant):
    counts = vfi_expected["param_counts"][variant]
    params = count_parameters(AMTInterpolator(build_amt(variant)))
    assert params == counts["total_parameters"]
    assert round(params / 1e6, 2) == counts["published_params_millions"]  # 2.99M / 12.94M / 30.64M


class _Conv:
    """An interpolator made of one 3x3 convolution (3 -> 8 channels) on frame0: hand-countable."""

    def __init__(self) -> None:
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def interpolate(self, frame0: torch.Tensor, frame1: torch.Tensor, t: float = 0.5) -> torch.Tensor:
        return self.conv(frame0[None])[0, :3]


def test_flops_count_a_multiply_add_as_two():
    result = measure_efficiency(_Conv(), width=20, height=12, runs=2)
    macs = 12 * 20 * 8 * 3 * 3 * 3  # output pixels x output channels x kernel taps x input channels
    assert result.flops == 2 * macs and result.macs == macs
    assert result.params == 8 * 3 * 3 * 3 + 8
    assert len(result.runtimes_ms) == 2 and all(r > 0 for r in result.runtimes_ms)


def test_methods_without_torch_operators_get_no_flops():
    result = measure_efficiency(DISFlow(), width=64, height=48, runs=1)
    assert result.params == 0 and result.flops is None


def test_sizes_and_runs_are_checked():
    assert parse_size("1280x720") == (1280, 720)
    for bad in ("1280", "1280x", "0x720", "axb"):
        with pytest.raises(InputError, match="WIDTHxHEIGHT"):
            parse_size(bad)
    with pytest.raises(InputError, match="--runs 0"):
        measure_efficiency(_Conv(), 8, 8, runs=0)


def test_cli_amt_s_small_size_json_and_results_run(run_cli, fixtures_dir, vfi_expected, tmp_path):
    weights = fixtures_dir / "vfi" / vfi_expected["amt_s_port_fixture"]["weights_file"]
    code, out, err = run_cli("efficiency", "--method", "amt-s", "--weights", weights, "--size", "128x64", "--runs", "1",
                             "--out", tmp_path / "eff.json", "--results", tmp_path / "results")
    assert code == 0, err
    doc = json.loads((tmp_path / "eff.json").read_text())
    assert doc["params"] == vfi_expected["param_counts"]["S"]["total_parameters"]
    direct = measure_efficiency(AMTInterpolator(build_amt("S")), 128, 64, runs=1)
    assert doc["flops"] == direct.flops and doc["macs"] * 2 == doc["flops"]
    assert doc["flops_by_operator"] == direct.flops_by_operator
    assert doc["runtime_ms"]["runs"] == 1 and doc["runtime_ms"]["median"] > 0
    assert doc["hardware"]["cpu_count"] and doc["weights"]["sha256"] == vfi_expected["amt_s_port_fixture"][
        "weights_sha256"]
    reported = {r["metric"]: r for r in doc["reported"]}
    assert set(reported) == {"params", "flops", "runtime"} and reported["flops"]["unit"] == "TFLOPs"
    run_dir = next(Path(tmp_path / "results").iterdir())
    assert read_run(run_dir)["status"] == "complete"
    rows = read_samples(run_dir).set_index("metric")
    assert rows.loc["params", "value"] == pytest.approx(doc["params"] / 1e6)
    assert rows.loc["flops", "value"] == pytest.approx(doc["flops"] / 1e12)
    assert rows.loc["runtime", "metric_variant"] == "cpu-median"
    assert set(rows["split"]) == {"128x64"} and set(rows["level"]) == {"set"}


def test_cli_errors(run_cli, tmp_path):
    code, _, err = run_cli("efficiency", "--method", "linear_blend", "--weights", tmp_path / "x.pth", "--size", "8x8",
                           "--out", tmp_path / "e.json")
    assert code == 2 and "takes no weights" in err
    code, _, err = run_cli("efficiency", "--method", "amt-s", "--size", "720p", "--out", tmp_path / "e.json")
    assert code == 2 and "WIDTHxHEIGHT" in err
    code, _, err = run_cli("efficiency", "--method", "dis_flow", "--device", "cuda", "--size", "8x8",
                           "--out", tmp_path / "e.json")
    assert code == 2 and "no torch modules" in err
    assert not (tmp_path / "e.json").exists()


# --- reference models from their architectures alone --------------------------------------------------------

def test_reference_models_are_counted_from_the_architecture_with_no_checkpoint(run_cli, vfi_expected, tmp_path,
                                                                               monkeypatch):
    """An empty weights cache: parameters and FLOPs still come out, equal to the fixture's counts and to the
    published figure in its convention (AMT's 'TFLOPs' are MACs); nothing is timed with --runs 0."""
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    code, out, err = run_cli("efficiency", "--method", "amt-s", "--runs", "0", "--out", tmp_path / "eff.json")
    assert code == 0, err
    doc = json.loads((tmp_path / "eff.json").read_text())
    assert doc["params"] == vfi_expected["param_counts"]["S"]["total_parameters"]
    assert doc["size"] == {"width": 1280, "height": 720} and doc["runtime_ms"] is None and doc["weights"] is None
    reported = {r["metric"]: r for r in doc["reported"]}
    assert round(doc["macs"] / 1e12, 2) == reported["flops"]["value"] == 0.12 and doc["flops"] == 2 * doc["macs"]
    assert "MACs" in reported["flops"]["convention"] and "published flops 0.12 TFLOPs" in out


def test_the_meta_count_equals_the_flops_of_a_real_call():
    from triptych.baselines.architecture_cost import count_amt

    counted = count_amt("amt-s", "S", width=128, height=64)
    measured = measure_efficiency(AMTInterpolator(build_amt("S")), 128, 64, runs=1)
    assert counted.flops == measured.flops and counted.params == measured.params


def test_runtime_without_weights_times_a_random_initialisation_and_says_so(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    code, _, err = run_cli("efficiency", "--method", "amt-s", "--size", "128x128", "--runs", "1",
                           "--out", tmp_path / "eff.json", "--results", tmp_path / "results")
    assert code == 0, err
    doc = json.loads((tmp_path / "eff.json").read_text())
    assert "random_initialisation" in doc["weights"] and doc["runtime_ms"]["runs"] == 1
    assert doc["runtime_ms"]["median"] > 0 and doc["params"] == 2_990_543
    run_dir = next(Path(tmp_path / "results").iterdir())
    assert read_run(run_dir)["weights"] == [doc["weights"]]


def test_e2fgvi_window_count_matches_the_published_convention(fixtures_dir):
    """E2FGVI at 432x240 on an 8-frame video (2 windows: frames 0-5 and 0-7): the 8-frame window's
    convolution + linear MACs are the thesis' 682 'GFLOPs' within 0.5 %; the parameters equal the
    released checkpoint's key list (fixture)."""
    from triptych.baselines.architecture_cost import architecture_figures

    figures = architecture_figures("e2fgvi", frames=8)
    keys = json.loads((fixtures_dir / "inpainting_models/e2fgvi_keys.json").read_text())
    assert figures.params == keys["total_params"] and figures.extras["windows"] == 2
    value, convention = figures.published_value("flops", "GFLOPs")
    assert value == pytest.approx(682, rel=5e-3) and "convolution and linear" in convention
    by_op = figures.extras["window8_macs_by_operator"]
    assert by_op["torchvision.deform_conv2d"] > 0 and figures.extras["window8_macs"] > value * 1e9
    assert figures.macs < figures.extras["window8_macs"]  # per frame: a window holds more than one frame


def test_photomaker_is_counted_from_the_sdxl_and_id_encoder_configs(fixtures_dir):
    """The ID encoder's count equals the reference encoder's (fixture key list); the SDXL UNet's is the
    published 2.567 B; one image is one encoder call, 50 guided UNet calls (batch 2) and one decode."""
    from triptych.baselines.architecture_cost import architecture_figures

    figures = architecture_figures("photomaker-v1", width=512, height=512)
    parts = {p.name: p for p in figures.parts}
    keys = json.loads((fixtures_dir / "model_ports/photomaker/photomaker_v1_keys.json").read_text())
    assert parts["PhotoMaker ID encoder"].params == keys["total_parameters"]
    assert round(parts["SDXL UNet"].params / 1e9, 3) == 2.567 and parts["SDXL UNet"].calls == 50
    assert [p.calls for p in figures.parts] == [1, 50, 1]
    assert figures.macs == sum(p.macs_per_call * p.calls for p in figures.parts)
