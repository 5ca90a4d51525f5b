"""Reported rows: every published number, mapped to its variant and stored on the raw scale."""

from __future__ import annotations

import csv
import math

import pytest

from triptych.leaderboard.reported import load_ablations, load_reported
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


def test_the_ablation_tables_are_loaded_apart_on_the_raw_scale_with_their_notes(fixtures_dir, run_cli):
    with open(fixtures_dir.parent / "reported/thesis_ablations.csv", newline="") as handle:
        published = list(csv.DictReader(handle))
    ablations = load_ablations()
    assert len(published) == len(ablations) == 151
    for row, got in zip(published, ablations.itertuples()):
        assert (got.table, got.method, got.benchmark, got.split, got.metric) == (
            row["table"], row["method"], row["benchmark"], row["split"], row["metric"])
        assert got.value == pytest.approx(float(row["value"]) * (0.01 if row["unit"] == "%" else 1.0))
        assert got.note.startswith(row["note"]) and got.source == "ablation"
    assert set(ablations[ablations.metric == "psnr"].query("task == 'frame_interpolation'").metric_variant) == {"amt"}
    # never among the main rows, so never paired: table 3.3's E2FGVI parameter count is not a table 3.1 row
    main = load_reported()
    assert not set(main.table) & set(ablations.table)
    assert main[(main.method == "E2FGVI") & (main.metric == "params")].empty

    code, out, _ = run_cli("leaderboard", "show", "--task", "frame_interpolation")
    assert code == 0 and "frame_interpolation: ablations" in out and "AMT-S, 5 flow-field pairs" in out
    assert "video_inpainting" not in out
    code, out, _ = run_cli("leaderboard", "show", "--task", "frame_interpolation", "--no-ablations")
    assert code == 0 and "ablations" not in out and "AMT-S" in out


def test_reproduced_rows_sit_beside_the_reference_methods_rows(tmp_path, run_cli):
    score("sample-triplets", tmp_path, method="linear_blend")
    rows = leaderboard_rows(tmp_path, task="frame_interpolation")
    assert set(rows.source) == {"reported", "reproduced"}
    assert set(rows[rows.source == "reported"].method) == {"AMT-S", "AMT-L", "AMT-G"}
    assert set(rows[rows.source == "reported"].metric) == {"psnr", "ssim"}
    code, out, _ = run_cli("leaderboard", "show", "--results", tmp_path, "--task", "frame_interpolation")
    assert code == 0 and "linear_blend" in out and "AMT-S" in out and "reproduced" in out
