"""Reported rows: every published number, mapped to its variant and stored on the raw scale."""

from __future__ import annotations

import csv
import math

import pytest

from triptych.leaderboard.reported import load_reported
from triptych.leaderboard.table import leaderboard_rows
from triptych.scoring import score


def test_every_published_number_is_loaded_on_the_raw_scale(fixtures_dir):
    with open(fixtures_dir.parent / "reported/thesis_tables.csv", newline="") as handle:
        published = list(csv.DictReader(handle))
    reported = load_reported()
    assert len(reported) == len(published)
    scale = {"x1e-2": 0.01, "%": 0.01}
    for row, got in zip(published, reported.itertuples()):
        assert (got.table, got.method, got.metric) == (row["table"], row["method"], row["metric"])
        if row["value"] == "":
            assert math.isnan(got.value) and got.note
            continue
        assert got.value == pytest.approx(float(row["value"]) * scale.get(row["unit"], 1.0))
    e2fgvi = reported[(reported.method == "E2FGVI") & (reported.benchmark == "davis")].set_index("metric")
    assert e2fgvi.loc["psnr", "metric_variant"] == "e2fgvi" and e2fgvi.loc["ssim", "metric_variant"] == "win65"
    assert set(reported[reported.task == "frame_interpolation"].query("metric == 'ssim'").metric_variant) == {"matlab3d"}


def test_reproduced_rows_sit_beside_the_reference_methods_rows(tmp_path, run_cli):
    score("sample-triplets", tmp_path, method="linear_blend")
    rows = leaderboard_rows(tmp_path, task="frame_interpolation")
    assert set(rows.source) == {"reported", "reproduced"}
    assert set(rows[rows.source == "reported"].method) == {"AMT-S", "AMT-L", "AMT-G"}
    assert set(rows[rows.source == "reported"].metric) == {"psnr", "ssim"}
    code, out, _ = run_cli("leaderboard", "show", "--results", tmp_path, "--task", "frame_interpolation")
    assert code == 0 and "linear_blend" in out and "AMT-S" in out and "reproduced" in out
