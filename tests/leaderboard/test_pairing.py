"""Pairing end to end (README "Pairing rule"): rows written by real ``triptych score`` runs of the registered
method ``amt-s-gopro`` on a tiny Adobe240 x8 test set, its checkpoint a rule-built file imported as the
registry's ``amt_s_gopro`` into a private TRIPTYCH_HOME (so its sha256 is the recorded pin). That run pairs
with the published AMT-S row of table 4.2 (difference and verdict), in ``leaderboard show`` and on the site
in headless Chromium; the same method on user weights stays unpaired with the reason. Expected values are
read from the runs and from the published table, never typed in."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from vfi_fake_layouts import adobe240_x8_test_frames, rule_amt_s_checkpoint
from test_leaderboard_site import _need_browser, _open, _table, start_browser
from triptych.leaderboard.reported import load_reported
from triptych.pipelines.standardize_vfi import main as standardize_vfi
from triptych.registry import registry
from triptych.results import list_runs, read_run

BENCH = "adobe240/x8-test"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, object]:
    """Two real runs in one results folder: the pinned checkpoint, and a user file."""
    from triptych.cli import main as cli

    base = tmp_path_factory.mktemp("pairing")
    patch = pytest.MonkeyPatch()
    patch.setenv("TRIPTYCH_HOME", str(base / "home"))  # private: the imported file's sha256 becomes the pin
    torch.set_num_threads(1)
    data = base / "datasets"
    standardize_vfi(["--name", BENCH, "--layout", "adobe240", "--root", str(adobe240_x8_test_frames(base / "test_frames")),
                     "--out", str(data / "build/vfi")])
    results = base / "results"
    assert cli(["weights", "import", "amt_s_gopro", str(rule_amt_s_checkpoint(base / "gopro_amt-s.pth", 0))]) == 0
    assert cli(["score", "--benchmark", BENCH, "--method", "amt-s-gopro", "--data-root", str(data),
                "--out", str(results)]) == 0
    user = rule_amt_s_checkpoint(base / "mine.pth", 1)
    assert cli(["score", "--benchmark", BENCH, "--method", "amt-s-gopro", "--weights", str(user), "--data-root",
                str(data), "--out", str(results)]) == 0
    by_kind = {("user" if r["request"].get("weights_sha256") else "pinned"): r for r in list_runs(results)}
    yield {"results": results, **by_kind}
    patch.undo()


def _published(metric: str) -> float:
    reported = load_reported()
    row = reported[(reported.table == "4.2") & (reported.benchmark == "adobe240") & (reported.method == "AMT-S")
                   & (reported.metric == metric)]
    assert len(row) == 1
    return float(row.value.iloc[0])


def _reproduced(run: dict, metric: str) -> float:
    return float(next(m for m in read_run(run["run_dir"])["metrics"] if m["metric"] == metric)["aggregate"]["value"])


@pytest.fixture(scope="module")
def pinned(runs) -> dict:
    run = runs["pinned"]
    run["run_dir"] = runs["results"] / run["run_id"]
    runs["user"]["run_dir"] = runs["results"] / runs["user"]["run_id"]
    return run


def test_the_runs_record_the_checkpoints_they_ran(runs, pinned) -> None:
    weights = read_run(pinned["run_dir"])["weights"]
    assert [w["name"] for w in weights] == ["amt_s_gopro"] and weights[0]["registered"]
    user = read_run(runs["user"]["run_dir"])["weights"][0]
    assert user["user_supplied"] and user["replaces"] == ["amt_s_gopro"]
    assert read_run(pinned["run_dir"])["metrics"][0]["aggregate"]["n"] == 7  # one x8 set: 7 targets


def test_leaderboard_show_pairs_the_pinned_run_and_says_why_not_for_user_weights(runs, pinned, run_cli) -> None:
    from triptych.leaderboard.sitedata import merge_table
    from triptych.leaderboard.table import leaderboard_rows

    rows = leaderboard_rows(runs["results"], task="frame_interpolation")
    table = merge_table(rows[rows.benchmark == "adobe240"]).set_index("run_id")
    for metric in ("psnr", "ssim"):
        row = table[(table.index == pinned["run_id"]) & (table.metric == metric)].iloc[0]
        published, reproduced = _published(metric), _reproduced(pinned, metric)
        assert (row.published_method, row.reported_table, row.reported) == ("AMT-S", "4.2", published)
        assert row.difference == pytest.approx(reproduced - published)
        tolerance = registry().metric(metric).gate_tolerance
        assert row.within_tolerance == (abs(reproduced - published) <= tolerance) and row.pairing == ""
        user = table[(table.index == runs["user"]["run_id"]) & (table.metric == metric)].iloc[0]
        assert np.isnan(user.reported) and "user weights" in user.pairing and "amt_s_gopro" in user.pairing
    code, out, _ = run_cli("leaderboard", "show", "--results", runs["results"], "--task", "frame_interpolation")
    assert code == 0
    line = next(ln for ln in out.splitlines() if "amt-s-gopro" in ln and "psnr" in ln and "AMT-S (table 4.2)" in ln)
    assert f"{_reproduced(pinned, 'psnr') - _published('psnr'):.6g}" in line
    unpaired = [ln for ln in out.splitlines() if "amt-s-gopro" in ln and "unpaired [" in ln]
    assert len(unpaired) == 2  # the user-weights run's psnr and ssim rows
    number = unpaired[0].split("unpaired [")[1].split("]")[0]
    assert f"[{number}] user weights (sha256 {runs['user']['request']['weights_sha256'][:12]}): not the published " \
           "checkpoint 'amt_s_gopro'" in out


def test_the_site_shows_the_pair_with_difference_and_verdict(runs, pinned, tmp_path_factory) -> None:
    _need_browser()
    from triptych.leaderboard.build import build_site

    out = tmp_path_factory.mktemp("pair-site") / "site"
    build_site(runs["results"], out)
    driver = start_browser(tmp_path_factory)
    try:
        log = _open(driver, out / "frame_interpolation-adobe240.html")
        assert not [e for e in log if e["level"] in ("SEVERE", "ERROR")]
        rows = _table(driver)
    finally:
        driver.quit()
    mine = [r for r in rows if r["run_id"] == pinned["run_id"] and r["metric"] == "psnr"]
    assert len(mine) == 1
    row = mine[0]
    published, reproduced = _published("psnr"), _reproduced(pinned, "psnr")
    assert float(row["reported"]) == pytest.approx(published) and row["published_method"] == "AMT-S"
    assert float(row["difference"]) == pytest.approx(reproduced - published, abs=1e-9)
    within = abs(reproduced - published) <= registry().metric("psnr").gate_tolerance
    assert row["reported_table"] == "4.2" and row["within_tolerance"] == ("1" if within else "0")
    user = [r for r in rows if r["run_id"] == runs["user"]["run_id"] and r["metric"] == "psnr"]
    assert len(user) == 1 and not user[0]["reported"] and "user weights" in user[0]["pairing"]
    # the published AMT-S row is shown once: as the pinned run's pair, not again on its own
    assert sum(1 for r in rows if r["method"] == "AMT-S" and r["metric"] == "psnr") == 0
