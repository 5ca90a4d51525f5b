"""Statistics (docs/statistics.md): intervals over the sampling unit, paired comparison, the significance
gate and the detectable difference, on constructed cases whose answers are known in advance."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO
from triptych.media import read_rgb
from triptych.results import SAMPLES_FILE, SCHEMA, read_run, read_samples
from triptych.scoring import score
from triptych.stats import (IntervalSettings, SamplingUnit, mean_interval, minimum_detectable_difference,
                            paired_difference, rank_intervals, units_of)

FRAMES = REPO / "datasets/samples/tennis/frames"
CENTERS = (1, 6, 11, 16, 21)  # sample-triplets (benchmarks/specs/samples.yaml)
VIDEO, FRAME = SamplingUnit("video", 1), SamplingUnit("frame", None)


def _frame(index: int) -> np.ndarray:
    return read_rgb(FRAMES / f"{index:05d}.png").astype(np.float32).transpose(2, 0, 1) / 255


def _write_predictions(folder: Path, make) -> Path:
    """sample-triplets predictions as float32 CHW .npy (never rounded): ``make(frame0, gt, frame1, centre)``."""
    for c in CENTERS:
        path = folder / "tennis" / f"{c:05d}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.clip(make(_frame(c - 1), _frame(c), _frame(c + 1), c), 0, 1).astype(np.float32))
    return folder


def _blend(f0, gt, f1, c):
    return (f0 + f1) / 2


def _noisy_blend(seed: int):
    """A stochastic method: the blend plus seeded noise (another seed: another draw of the same method)."""
    def make(f0, gt, f1, c):
        return _blend(f0, gt, f1, c) + np.random.default_rng([seed, c]).normal(0, 0.03, f0.shape)
    return make


def _half_db_worse(f0, gt, f1, c):
    """The blend's error scaled by 10^(0.5/20): every triplet's MSE x 10^0.05, i.e. PSNR 0.5 dB lower."""
    return gt + (_blend(f0, gt, f1, c) - gt) * 10 ** (0.5 / 20)


@pytest.fixture(scope="module")
def triplet_runs(tmp_path_factory) -> dict[str, Path]:
    """sample-triplets runs of constructed predictions: the blend twice (identical), the blend 0.5 dB worse,
    and a stochastic method under two seeds, each in its own results folder."""
    root = tmp_path_factory.mktemp("stats")
    makers = {"blend": _blend, "blend_again": _blend, "worse": _half_db_worse, "seed1": _noisy_blend(1),
              "seed2": _noisy_blend(2)}
    runs = {}
    for name, make in makers.items():
        preds = _write_predictions(root / "preds" / name, make)
        runs[name] = score("sample-triplets", root / "results" / name, pred_dir=preds)
    return runs


# ------------------------------------------------------------------------------------- the pure core

def _clustered(rng: np.random.Generator, videos: int = 8, frames: int = 30, spread: float = 2.0,
               noise: float = 0.2) -> tuple[list[str], np.ndarray]:
    """Frame values of ``videos`` videos: a per-video level (sd ``spread``) plus small frame noise, true mean 30."""
    ids = [f"v{v}/{f:03d}" for v in range(videos) for f in range(frames)]
    level = 30 + spread * rng.standard_normal(videos)
    return ids, np.repeat(level, frames) + noise * rng.standard_normal(videos * frames)


def test_video_level_interval_is_wider_than_frame_level_on_clustered_data():
    ids, values = _clustered(np.random.default_rng(0))
    settings = IntervalSettings()
    by_video = mean_interval(units_of(ids, values, VIDEO), VIDEO, settings)
    by_frame = mean_interval(units_of(ids, values, FRAME), FRAME, settings)
    assert (by_video["units"], by_frame["units"]) == (8, 240)
    width = lambda i: i["high"] - i["low"]  # noqa: E731
    assert width(by_video) > 4 * width(by_frame)
    # both are intervals of the same pooled mean
    assert by_video["low"] < values.mean() < by_video["high"] and by_frame["low"] < values.mean() < by_frame["high"]


def test_video_level_interval_covers_the_true_mean_and_frame_level_does_not():
    """200 simulated benchmarks with a known mean (30): resampling videos keeps close to the nominal 95 %
    coverage; resampling frames of the same data misses most of the time."""
    rng = np.random.default_rng(7)
    settings = IntervalSettings(resamples=1000)
    covered = {"video": 0, "frame": 0}
    for _ in range(200):
        ids, values = _clustered(rng)
        for unit in (VIDEO, FRAME):
            interval = mean_interval(units_of(ids, values, unit), unit, settings)
            covered[unit.name] += interval["low"] <= 30 <= interval["high"]
    assert covered["video"] / 200 > 0.8  # 172 / 200: a percentile bootstrap over 8 units runs a little narrow
    assert covered["frame"] / 200 < 0.4  # 53 / 200


def test_one_video_has_no_interval_and_says_why():
    ids, values = _clustered(np.random.default_rng(1), videos=1)
    interval = mean_interval(units_of(ids, values, VIDEO), VIDEO, IntervalSettings())
    assert interval["low"] is None and interval["high"] is None and "at least 2" in interval["note"]


def test_interval_is_seeded_and_records_its_settings():
    ids, values = _clustered(np.random.default_rng(2))
    settings = IntervalSettings(level=0.9, method="BCa", resamples=500, seed=3)
    first = mean_interval(units_of(ids, values, VIDEO), VIDEO, settings)
    assert first == mean_interval(units_of(ids[::-1], values[::-1], VIDEO), VIDEO, settings)  # order-free
    assert {k: first[k] for k in ("level", "method", "resamples", "seed", "unit")} == {
        "level": 0.9, "method": "BCa", "resamples": 500, "seed": 3, "unit": "video"}
    assert first != mean_interval(units_of(ids, values, VIDEO), VIDEO, IntervalSettings(resamples=500, seed=4))


def test_paired_difference_known_answers():
    ids, values = _clustered(np.random.default_rng(3))
    same = paired_difference(ids, values, values, VIDEO, IntervalSettings())
    assert same.difference == 0 and (same.interval["low"], same.interval["high"]) == (0, 0) and same.p_value == 1
    shifted = paired_difference(ids, values, values - 0.25, VIDEO, IntervalSettings())
    assert shifted.difference == pytest.approx(-0.25)
    assert shifted.interval["low"] == pytest.approx(-0.25) and shifted.interval["high"] == pytest.approx(-0.25)
    assert shifted.p_value == pytest.approx(2 / 2 ** 8)  # exact sign-flip test over 8 videos: the 2 extremes
    assert shifted.probability_worse("higher", 0.2) == 1 and shifted.probability_worse("higher", 0.3) == 0


def test_minimum_detectable_difference_known_answer():
    """5 triplets whose differences are (0.1, -0.1, 0.1, -0.1, 0) x sqrt(5/4): mean 0, sum of squares 0.05, so
    se = sqrt(5/4 x 0.05) / 5 = 0.05 and MDE = (z_0.975 + z_0.8) x 0.05 = (1.959964 + 0.841621) x 0.05."""
    ids = [f"t{i}" for i in range(5)]
    a = np.full(5, 30.0)
    b = a + np.array([0.1, -0.1, 0.1, -0.1, 0.0]) * math.sqrt(5 / 4)
    out = minimum_detectable_difference(ids, a, b, SamplingUnit("triplet"))
    assert out["difference"] == pytest.approx(0, abs=1e-12) and out["standard_error"] == pytest.approx(0.05)
    assert out["minimum_detectable"] == pytest.approx(2.801585 * 0.05, rel=1e-6)
    assert (out["units"], out["samples"], out["unit"]) == (5, 5, "triplet")


def test_rank_intervals_tie_where_intervals_overlap():
    # higher is better: C clearly first; A and B overlap, so they share ranks 2-3
    assert rank_intervals([30.0, 30.2, 33.0], [29.5, 29.8, 32.8], [30.5, 30.6, 33.2], "higher") == [(2, 3), (2, 3),
                                                                                                     (1, 1)]
    # lower is better: the same values reverse
    assert rank_intervals([1.0, 2.0, 3.0], [0.9, 1.9, 2.9], [1.1, 2.1, 3.1], "lower") == [(1, 1), (2, 2), (3, 3)]


# ----------------------------------------------------------------------------- runs, compare and CLI

def test_run_json_records_the_interval_and_its_settings(triplet_runs):
    run = read_run(triplet_runs["blend"])
    assert run["statistics"] == {"level": 0.95, "method": "percentile", "resamples": 2000, "seed": 0,
                                 "sampling_unit": {"name": "triplet", "depth": None}}
    samples = read_samples(triplet_runs["blend"])
    for m in run["metrics"]:
        interval, values = m["aggregate"]["interval"], samples[samples.metric == m["metric"]]["value"]
        assert interval["unit"] == "triplet" and interval["units"] == 5
        assert values.min() < interval["low"] < m["aggregate"]["value"] < interval["high"] < values.max()


def test_evaluate_results_carry_the_interval(triplet_runs):
    from triptych.api import Results

    results = Results(triplet_runs["blend"])
    table = results.aggregates().set_index("metric")
    assert table.loc["psnr", "ci_low"] == results.interval("psnr")["low"] < results["psnr"]
    assert results["psnr"] < table.loc["psnr", "ci_high"] == results.interval("psnr")["high"]
    assert table.loc["psnr", "ci_unit"] == "triplet" and table.loc["psnr", "ci_units"] == 5


def test_compare_identical_runs_difference_zero_p_one(triplet_runs, run_cli):
    code, out, err = run_cli("compare", triplet_runs["blend"], triplet_runs["blend_again"], "--json")
    assert code == 0, err
    rows = {r["metric"]: r for r in json.loads(out)}
    assert set(rows) == {"psnr", "ssim"}
    for r in rows.values():
        assert r["difference"] == 0 and r["ci_low"] == 0 and r["ci_high"] == 0 and r["p_value"] == 1
        assert r["better"] == "neither" and r["n"] == 5 and r["ci_unit"] == "triplet"


def test_compare_a_constant_shift_excludes_zero_at_the_shift(triplet_runs, tmp_path, run_cli):
    shifted = _shifted_copy(triplet_runs["blend"], tmp_path / "shifted", "psnr", -0.3)
    code, out, err = run_cli("compare", triplet_runs["blend"], shifted, "--json")
    assert code == 0, err
    psnr = next(r for r in json.loads(out) if r["metric"] == "psnr")
    assert psnr["difference"] == pytest.approx(-0.3)
    assert psnr["ci_low"] == pytest.approx(-0.3) and psnr["ci_high"] == pytest.approx(-0.3) and psnr["better"] == "A"
    assert psnr["p_value"] == pytest.approx(2 / 2 ** 5)  # exact: the all-same-sign flips of 5 triplets


def test_compare_refuses_runs_with_different_samples_and_names_them(triplet_runs, tmp_path, run_cli):
    fewer = _shifted_copy(triplet_runs["blend"], tmp_path / "fewer", "psnr", 0.0, drop="tennis/00011")
    code, out, err = run_cli("compare", triplet_runs["blend"], fewer)
    assert code == 2 and out == ""
    assert "different samples" in err and "tennis/00011" in err and "only in" in err


def _shifted_copy(run_dir: Path, dest: Path, metric: str, shift: float, drop: str | None = None) -> Path:
    """A copy of a run whose per-sample values of ``metric`` are moved by ``shift`` (and ``drop`` removed)."""
    import shutil

    shutil.copytree(run_dir, dest)
    samples = read_samples(dest)
    samples.loc[samples["metric"] == metric, "value"] += shift
    if drop is not None:
        samples = samples[samples["sample_id"] != drop]
    pq.write_table(pa.Table.from_pandas(samples, schema=SCHEMA, preserve_index=False), dest / SAMPLES_FILE)
    return dest


# ------------------------------------------------------------------------------ the significance gate

def _rules(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_gate_significance_catches_a_half_db_regression(triplet_runs, tmp_path, run_cli):
    rules = _rules(tmp_path / "gate.yaml", "psnr: {absolute: 0.1, significance: 0.95}\n")
    code, out, err = run_cli("gate", "--baseline", triplet_runs["blend"].parent, "--candidate",
                             triplet_runs["worse"].parent, "--rules", rules, "--out", tmp_path / "report")
    assert code == 1, err
    report = json.loads((tmp_path / "report/gate.json").read_text())
    psnr = next(r for r in report["rows"] if r["key"]["metric"] == "psnr")
    assert psnr["status"] == "regression" and psnr["probability"] == 1
    assert psnr["delta"] == pytest.approx(-0.5, abs=0.01)
    assert psnr["interval"]["high"] < -0.1 and psnr["interval"]["unit"] == "triplet"
    markdown = (tmp_path / "report/gate.md").read_text()
    line = next(ln for ln in markdown.splitlines() if "psnr:amt" in ln and ln.startswith("| "))
    assert "❌ regression" in line and f"[{psnr['interval']['low']:+.4g}, {psnr['interval']['high']:+.4g}]" in line


def test_gate_significance_does_not_flag_a_rerun_with_another_seed(triplet_runs, tmp_path, run_cli):
    """A stochastic method under seeds 1 and 2: a zero fixed tolerance flags one of the two directions (the
    runs differ by noise), the significance rule flags neither, and says so in gate.md."""
    fixed = _rules(tmp_path / "fixed.yaml", "psnr: {absolute: 0}\n")
    significance = _rules(tmp_path / "significance.yaml", "psnr: {absolute: 0, significance: 0.95}\n")
    flagged_fixed, statuses = 0, set()
    for base, cand in (("seed1", "seed2"), ("seed2", "seed1")):
        args = ("gate", "--baseline", triplet_runs[base].parent, "--candidate", triplet_runs[cand].parent)
        code, _, _ = run_cli(*args, "--rules", fixed)
        flagged_fixed += code == 1
        code, _, err = run_cli(*args, "--rules", significance, "--out", tmp_path / base)
        assert code == 0, err
        report = json.loads((tmp_path / base / "gate.json").read_text())
        psnr = next(r for r in report["rows"] if r["key"]["metric"] == "psnr")
        assert psnr["interval"]["low"] < 0 < psnr["interval"]["high"] and psnr["probability"] <= 0.95
        statuses.add(psnr["status"])
    assert flagged_fixed == 1
    assert "within_noise" in statuses


def test_gate_significance_needs_per_sample_rows(triplet_runs, tmp_path, run_cli):
    rules = _rules(tmp_path / "gate.yaml", "psnr: {significance: 0.95}\n")
    code, _, _ = run_cli("gate", "--baseline", triplet_runs["blend"].parent, "--candidate",
                         triplet_runs["blend"].parent, "--out", tmp_path / "agg")
    assert code == 0
    code, out, err = run_cli("gate", "--baseline", tmp_path / "agg/aggregates.json", "--candidate",
                             triplet_runs["blend"].parent, "--rules", rules)
    assert code == 2 and out == "" and "significance rule needs per-sample rows" in err


@pytest.mark.parametrize("text, says", [("psnr: {significance: 1.5}\n", "not a probability level"),
                                        ("psnr: {significant: 0.9}\n", "did you mean 'significance'")])
def test_gate_significance_rule_is_validated(triplet_runs, tmp_path, run_cli, text, says):
    rules = _rules(tmp_path / "gate.yaml", text)
    code, out, err = run_cli("gate", "--baseline", triplet_runs["blend"].parent, "--candidate",
                             triplet_runs["blend"].parent, "--rules", rules)
    assert code == 2 and out == "" and says in err


# ----------------------------------------------------------------------------- power and leaderboard

def test_power_reports_the_detectable_difference_of_the_pair(triplet_runs, tmp_path, run_cli):
    import shutil

    results = tmp_path / "two"
    for name in ("seed1", "seed2"):
        shutil.copytree(triplet_runs[name], results / triplet_runs[name].name)
    code, out, err = run_cli("power", "--benchmark", "sample-triplets", "--metric", "psnr", "--results", results,
                             "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    a, b = (read_samples(results / row[k]).query("metric == 'psnr'").set_index("sample_id")["value"]
            for k in ("run_a", "run_b"))
    d = (b - a[b.index]).to_numpy()
    assert row["difference"] == pytest.approx(d.mean())
    assert row["standard_error"] == pytest.approx(d.std(ddof=1) / math.sqrt(5))  # one sample per triplet
    assert row["minimum_detectable"] == pytest.approx(2.801585 * row["standard_error"], rel=1e-6)
    code, out, err = run_cli("power", "--benchmark", "sample-triplets", "--metric", "psnr", "--results",
                             triplet_runs["seed1"].parent)
    assert code == 2 and "needs two" in err


def test_leaderboard_show_prints_intervals_and_rank_ranges(triplet_runs, tmp_path, run_cli):
    import shutil

    results = tmp_path / "board"
    for name in ("blend", "worse", "seed1"):
        shutil.copytree(triplet_runs[name], results / triplet_runs[name].name)
    code, out, err = run_cli("leaderboard", "show", "--results", results, "--task", "frame_interpolation")
    assert code == 0, err
    for name in ("blend", "worse"):
        interval = read_run(triplet_runs[name])["metrics"][0]["aggregate"]["interval"]
        assert f"[{interval['low']:.6g}, {interval['high']:.6g}] 95% / 5 triplets" in out
    # blend and its 0.5 dB worse copy: their psnr intervals (each about 1.1 dB wide) overlap, so they tie
    from triptych.leaderboard.table import leaderboard_rows, with_rank_intervals

    rows = with_rank_intervals(leaderboard_rows(results, "frame_interpolation"))
    psnr = rows[(rows.source == "reproduced") & (rows.metric == "psnr")].set_index("run_id")["rank"]
    assert psnr[triplet_runs["blend"].name] == psnr[triplet_runs["worse"].name] == "1-3"


def test_results_compare_is_the_api_of_triptych_compare(triplet_runs):
    from triptych.api import Results

    rows = Results(triplet_runs["blend"]).compare(Results(triplet_runs["worse"])).set_index("metric")
    assert rows.loc["psnr", "difference"] == pytest.approx(-0.5, abs=0.01) and rows.loc["psnr", "better"] == "A"
    assert rows.loc["psnr", "ci_high"] < -0.4


# --------------------------------------------------------------------------------------- seed replicates

def test_score_seeds_records_the_across_seed_spread(tmp_path, run_cli):
    """copy-jitter (a plugin whose image and colour gain follow the seed) on the personalization protocol with
    the sample's two identities, 3 seed replicates: three runs whose spread equals their samples' means."""
    pytest.importorskip("dlib")
    pytest.importorskip("triptych_copy_jitter")
    from triptych.seeds import SEED_STRIDE

    code, out, err = run_cli("score", "--benchmark", "celeb-25id-40prompt", "--method", "copy-jitter", "--refs",
                             REPO / "datasets/samples/portraits", "--param", "ids=found", "--param", "prompts=1",
                             "--param", "images_per_prompt=2", "--param", "seed=5", "--metric", "face_sim:dlib",
                             "--seeds", "3", "--out", tmp_path)
    assert code == 0, err
    runs = sorted((read_run(d) for d in tmp_path.iterdir()), key=lambda r: int(r["benchmark_params"]["seed"]))
    assert [int(r["benchmark_params"]["seed"]) for r in runs] == [5, 5 + SEED_STRIDE, 5 + 2 * SEED_STRIDE]
    means = [float(read_samples(tmp_path / r["run_id"])["value"].mean()) for r in runs]
    assert len(set(means)) == 3  # the seed changes the images
    for run in runs:
        aggregate = run["metrics"][0]["aggregate"]
        spread = aggregate["across_seeds"]
        assert spread["seeds"] == 3 and sorted(spread["runs"]) == sorted(r["run_id"] for r in runs)
        assert spread["min"] == pytest.approx(min(means)) and spread["max"] == pytest.approx(max(means))
        assert spread["sd"] == pytest.approx(float(np.std(means, ddof=1)))
        assert aggregate["interval"]["unit"] == "identity" and aggregate["interval"]["units"] == 2
    assert out.count("across 3 seeds: sd") == 3
    from triptych.api import Results

    table = Results(tmp_path / runs[0]["run_id"]).aggregates().iloc[0]
    assert table["seeds_seeds"] == 3 and table["seeds_min"] == pytest.approx(min(means))
    assert table["seeds_max"] == pytest.approx(max(means))


def test_seeds_need_a_benchmark_with_a_seed_parameter(tmp_path, run_cli):
    code, out, err = run_cli("score", "--benchmark", "sample-triplets", "--method", "linear_blend", "--seeds", "2",
                             "--out", tmp_path)
    assert code == 2 and out == "" and "has no seed parameter" in err


# ----------------------------------------------------------------------------------------- set metrics

def test_set_metric_interval_from_cached_features(kid_rule, tmp_path):
    """KID (on the rule-weight Inception) of copy-jitter on the protocol with the sample's 2 identities: the run
    caches both feature sets in features/kid-rule.npz, the cached features give back the run's KID exactly,
    and the interval resamples identities from them."""
    pytest.importorskip("triptych_copy_jitter")
    from triptych.metrics.kid import kid_from_features

    run_dir = score("celeb-25id-40prompt", tmp_path, method="copy-jitter", metrics=["kid:rule"],
                    params={"refs": str(REPO / "datasets/samples/portraits"), "ids": "found", "prompts": "1",
                            "images_per_prompt": "2"})
    kid = read_run(run_dir)["metrics"][0]
    interval = kid["aggregate"]["interval"]
    assert interval["features_file"] == "features/kid-rule.npz" and "interval" not in kid["extras"]
    cached = np.load(run_dir / "features/kid-rule.npz")
    assert cached["real"].shape == (8, 2048) and cached["generated"].shape == (4, 2048)
    assert sorted({i.split("/")[0] for i in cached["generated_ids"]}) == ["newton", "scarletthead"]
    again = kid_from_features(cached["real"], cached["generated"], **kid_rule.params)
    assert again.value == pytest.approx(kid["aggregate"]["value"], rel=1e-12)
    assert (interval["unit"], interval["units"], interval["resamples"], interval["method"]) == (
        "identity", 2, 200, "percentile")
    assert math.isfinite(interval["low"]) and interval["low"] < interval["high"]
