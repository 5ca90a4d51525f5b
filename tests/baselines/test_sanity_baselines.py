"""The sanity baselines run on the offline sample: ``blank`` scores 0 on ``sample-portraits`` and is flagged
(``no_face=zero``, the default), ``no_face=error`` stops; a request that fails before any sample is scored
leaves no run folder behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from triptych.results import list_runs, read_samples

from conftest import REPO

FLAGGED = ["newton/loo_0/0", "newton/loo_1/0", "newton/loo_2/0", "newton/loo_3/0", "scarletthead/loo_0/0",
           "scarletthead/loo_1/0", "scarletthead/loo_2/0", "scarletthead/loo_3/0"]


def test_blank_scores_zero_on_the_sample_portraits_and_every_image_is_flagged(tmp_path, run_cli):
    pytest.importorskip("dlib")
    code, out, err = run_cli("score", "--benchmark", "sample-portraits", "--method", "blank", "--out", tmp_path)
    assert code == 0, err
    assert out.startswith("sample-portraits  blank  face_sim:dlib v1  0   (n=8)")
    assert "flagged: face_sim:dlib no_face on 8 of 8 sample(s), scored 0" in err
    assert "generated image newton/loo_0/0: no face found by the 'dlib' face detector" in err
    (run,) = list_runs(tmp_path)
    (metric,) = run["metrics"]
    assert metric["flagged"] == {"no_face": {"count": 8, "sample_ids": FLAGGED}}
    assert run["benchmark_params"]["no_face"] == "zero"
    assert read_samples(tmp_path / run["run_id"])["value"].tolist() == [0.0] * 8
    # the README's spelling of the default gives the same scores and flags
    code, again, err = run_cli("score", "--benchmark", "sample-portraits", "--method", "blank", "--param",
                               "no_face=zero", "--out", tmp_path / "explicit")
    assert (code, again) == (0, out), err
    assert list_runs(tmp_path / "explicit")[0]["metrics"][0]["flagged"] == metric["flagged"]


def test_no_face_error_stops_and_leaves_no_empty_run_folder(tmp_path, run_cli):
    pytest.importorskip("dlib")
    code, out, err = run_cli("score", "--benchmark", "sample-portraits", "--method", "blank", "--param",
                             "no_face=error", "--out", tmp_path)
    assert (code, out) == (2, "")
    assert "generated image newton/loo_0/0: no face found" in err
    assert "no sample was scored, so no run was kept" in err
    assert list(tmp_path.iterdir()) == []


def test_reference_copy_keeps_its_documented_score_with_the_policy(tmp_path, run_cli):
    pytest.importorskip("dlib")
    code, out, err = run_cli("score", "--benchmark", "sample-portraits", "--method", "reference_copy", "--out", tmp_path)
    assert code == 0, err
    assert "flagged" not in err
    run = json.loads(next(Path(tmp_path).glob("*/run.json")).read_text())
    assert "flagged" not in run["metrics"][0]


def test_an_unknown_no_face_policy_is_refused_before_any_run_folder(tmp_path, run_cli):
    code, out, err = run_cli("score", "--benchmark", "sample-portraits", "--method", "blank", "--param",
                             "no_face=skip", "--out", tmp_path / "results")
    assert (code, out) == (2, "")
    assert "no_face='skip': expected 'zero' or 'error'" in err and "fix:" in err
    assert not (tmp_path / "results").exists()


def test_a_method_that_fails_on_its_first_sample_leaves_no_run_folder(tmp_path, run_cli):
    """A prediction folder whose first file is corrupt: refused on the first sample, nothing kept."""
    frames = REPO / "datasets/samples/tennis/frames"
    pred = tmp_path / "pred" / "tennis"
    pred.mkdir(parents=True)
    for c in (1, 6, 11, 16, 21):
        (pred / f"{c:05d}.png").write_bytes((frames / f"{c:05d}.png").read_bytes()[: 3000 if c == 1 else None])
    code, out, err = run_cli("score", "--benchmark", "sample-triplets", "--pred-dir", tmp_path / "pred",
                             "--out", tmp_path / "results")
    assert (code, out) == (2, "")
    assert "00001.png" in err and "no sample was scored, so no run was kept" in err
    assert list((tmp_path / "results").iterdir()) == []


def test_a_wrong_data_root_is_named_as_such_not_as_a_manifest_to_regenerate(tmp_path, run_cli):
    code, out, err = run_cli("score", "--benchmark", "sample-triplets", "--method", "linear_blend", "--data-root",
                             tmp_path / "elsewhere", "--out", tmp_path / "results")
    assert (code, out) == (2, "")
    assert f"--data-root {tmp_path / 'elsewhere'}: no manifests/ folder there" in err
    assert "regenerate" not in err and "triptych doctor" in err
