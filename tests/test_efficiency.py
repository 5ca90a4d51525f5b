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
