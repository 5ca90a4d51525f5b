"""``triptych demo``: all three tasks end to end on the embedded sample, with provenance."""

from __future__ import annotations

from triptych.results import list_runs, read_samples
from triptych.weights import weights_registry


def test_demo_scores_all_three_tasks_beside_the_reported_rows(run_cli, tmp_path):
    code, out, err = run_cli("demo", "--out", tmp_path)
    assert code == 0, err
    for title in ("video_inpainting", "frame_interpolation", "personalization"):
        assert title in out
    for method in ("mean_fill", "linear_blend", "reference_copy", "other_id", "E2FGVI", "AMT-S", "PhotoMaker"):
        assert method in out, method
    runs = {(r["benchmark"], r["method"]): r for r in list_runs(tmp_path)}
    assert set(runs) == {("sample-tennis", "mean_fill"), ("sample-triplets", "linear_blend"),
                         ("sample-portraits", "reference_copy"), ("sample-portraits", "other_id")}
    for run in runs.values():
        assert run["status"] == "complete" and run["data"]["manifest_sha256"]
        assert run["packages"]["torch"] and run["code"]["triptych_version"]
    registry = weights_registry()
    portrait_run = runs[("sample-portraits", "reference_copy")]
    assert {w["name"] for w in portrait_run["weights"]} == {"dlib_shape_predictor_5", "dlib_face_recognition_resnet_v1"}
    for w in portrait_run["weights"]:
        assert w["sha256"] == registry[w["name"]].sha256
    # leave-one-out: the same identity (another photo) scores clearly above another identity
    same = read_samples(tmp_path / portrait_run["run_id"]).value
    other = read_samples(tmp_path / runs[("sample-portraits", "other_id")]["run_id"]).value
    assert same.min() > other.max() + 0.05


def test_demo_run_again_reuses_its_complete_runs(run_cli, tmp_path):
    assert run_cli("demo", "--out", tmp_path)[0] == 0
    before = {r["run_id"]: (tmp_path / r["run_id"] / "samples.parquet").stat().st_mtime_ns for r in list_runs(tmp_path)}
    code, out, err = run_cli("demo", "--out", tmp_path)
    assert code == 0 and "mean_fill" in out
    assert err.count("matches the current inputs: reused, nothing scored") == len(before) == 4
    after = {r["run_id"]: (tmp_path / r["run_id"] / "samples.parquet").stat().st_mtime_ns for r in list_runs(tmp_path)}
    assert after == before
