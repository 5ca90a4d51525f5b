"""``triptych gate``: regressions beyond tolerance fail and are named; direction, versions and data respected."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from triptych.leaderboard.gate import AGGREGATES_KIND, compare, load_aggregates, run_gate
from triptych.registry import registry
from triptych.results import SAMPLES_FILE, SCHEMA, read_samples
from triptych.scoring import score


def _row(metric: str = "psnr", variant: str = "amt", value: float = 30.0, version: int = 1, method: str = "m",
         manifest: str | None = "abc") -> dict:
    return {"benchmark": "sample-triplets", "split": "test", "benchmark_variant": "amt", "method": method,
            "metric": metric, "metric_variant": variant, "metric_version": version, "value": value, "n": 5,
            "manifest_sha256": manifest, "run_id": "r"}


def _write(path: Path, *rows: dict) -> Path:
    path.write_text(json.dumps({"kind": AGGREGATES_KIND, "schema_version": "1.0", "rows": list(rows)}))
    return path


def _gate(tmp_path: Path, base: list[dict], cand: list[dict], **kwargs):
    result, _ = run_gate(_write(tmp_path / "base.json", *base), _write(tmp_path / "cand.json", *cand), **kwargs)
    return result


def _tol(metric: str) -> float:
    return registry().metric(metric).gate_tolerance


@pytest.fixture(scope="module")
def triplet_results(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("gate-baseline")
    score("sample-triplets", results, method="linear_blend")
    return results


def _edited_copy(results: Path, dest: Path, edit) -> Path:
    """A copy of a results folder whose run's rows go through ``edit(frame) -> frame``."""
    shutil.copytree(results, dest)
    for run_dir in (p for p in dest.iterdir() if (p / SAMPLES_FILE).is_file()):
        samples = edit(read_samples(run_dir))
        pq.write_table(pa.Table.from_pandas(samples, schema=SCHEMA, preserve_index=False), run_dir / SAMPLES_FILE)
    return dest


def _shifted_copy(results: Path, dest: Path, metric: str, shift: float) -> Path:
    """A copy of a results folder whose per-sample values of ``metric`` are moved by ``shift``."""
    def shifted(samples):
        samples.loc[samples["metric"] == metric, "value"] += shift
        return samples
    return _edited_copy(results, dest, shifted)


def test_regression_beyond_tolerance_fails_and_names_the_row(tmp_path):
    tol = _tol("psnr")
    result = _gate(tmp_path, [_row(value=30.0)], [_row(value=30.0 - 20 * tol)])
    assert not result.passed
    (row,) = result.failures
    assert row.status == "regression" and row.key["method"] == "m" and row.key["metric"] == "psnr"
    assert row.delta == pytest.approx(-20 * tol) and row.allowed == pytest.approx(tol)


def test_within_tolerance_and_improvements_pass(tmp_path):
    tol = _tol("psnr")
    within = _gate(tmp_path, [_row(value=30.0)], [_row(value=30.0 - tol / 2)])
    assert within.passed and within.rows[0].status == "within_tolerance"
    better = _gate(tmp_path, [_row(value=30.0)], [_row(value=30.0 + 100 * tol)])
    assert better.passed and better.rows[0].status == "improved"


def test_metric_version_change_fails_and_is_never_compared(tmp_path):
    result = _gate(tmp_path, [_row(version=1)], [_row(version=2)])
    assert not result.passed
    (row,) = result.failures
    assert row.status == "version_changed" and (row.baseline_version, row.candidate_version) == (1, 2)
    assert row.delta is None


def test_direction_is_respected_for_a_lower_is_better_metric(tmp_path):
    lower = dataclasses.replace(registry().metric("psnr"), name="ewarp_like", direction="lower")
    metrics = {"ewarp_like": lower}
    tol = lower.gate_tolerance
    base = load_aggregates(_write(tmp_path / "b.json", _row("ewarp_like", "dis", 1.0)))
    up = load_aggregates(_write(tmp_path / "u.json", _row("ewarp_like", "dis", 1.0 + 20 * tol)))
    down = load_aggregates(_write(tmp_path / "d.json", _row("ewarp_like", "dis", 1.0 - 20 * tol)))
    assert compare(base, up, metrics=metrics).failures[0].status == "regression"  # higher is worse here
    assert compare(base, down, metrics=metrics).rows[0].status == "improved"


def test_missing_row_fails_new_row_is_reported_and_data_change_is_refused(tmp_path):
    result = _gate(tmp_path, [_row(method="a"), _row(method="b")], [_row(method="a"), _row(method="c")])
    status = {r.key["method"]: r.status for r in result.rows}
    assert status == {"a": "unchanged", "b": "missing", "c": "new"} and not result.passed
    changed = _gate(tmp_path, [_row(manifest="abc")], [_row(manifest="def")])
    assert changed.failures[0].status == "data_changed"


def test_rules_override_the_registry_tolerance(tmp_path):
    rules = tmp_path / "gate.yaml"
    rules.write_text("psnr:amt: {absolute: 0.5}\n")
    result = _gate(tmp_path, [_row(value=30.0)], [_row(value=29.7)], rules=rules)
    assert result.passed and result.rows[0].status == "within_tolerance"


def test_cli_exit_codes_and_reports(triplet_results, tmp_path, capsys):
    from triptych.cli import main

    assert main(["gate", "--baseline", str(triplet_results), "--candidate", str(triplet_results),
                 "--out", str(tmp_path / "same")]) == 0
    assert "PASSED" in capsys.readouterr().out
    baseline_json = tmp_path / "same" / "aggregates.json"
    assert json.loads(baseline_json.read_text())["kind"] == AGGREGATES_KIND

    worse = _shifted_copy(triplet_results, tmp_path / "worse", "psnr", -20 * _tol("psnr"))
    code = main(["gate", "--baseline", str(baseline_json), "--candidate", str(worse), "--out", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 1
    assert "regression" in out and "linear_blend" in out and "psnr:amt" in out and "FAILED" in out
    report = json.loads((tmp_path / "r" / "gate.json").read_text())
    assert report["passed"] is False and report["counts"]["regression"] == 1
    md = (tmp_path / "r" / "gate.md").read_text()
    assert "❌ failed" in md and "linear_blend" in md

    better = _shifted_copy(triplet_results, tmp_path / "better", "ssim", 20 * _tol("ssim"))
    assert main(["gate", "--baseline", str(triplet_results), "--current", str(better)]) == 0
    assert "improved" in capsys.readouterr().out

    assert main(["gate", "--baseline", str(tmp_path / "nope"), "--candidate", str(better)]) == 2
    assert "no such results folder" in capsys.readouterr().err


def test_a_protocol_variant_mismatch_is_refused_not_compared(tmp_path):
    """psnr:amt in the baseline, psnr:e2fgvi in the candidate: different formulas, never compared."""
    result = _gate(tmp_path, [_row(variant="amt", value=30.0)], [_row(variant="e2fgvi", value=30.0)])
    statuses = {r.status for r in result.rows}
    assert statuses == {"variant_changed", "new"} and not result.passed
    assert "psnr:e2fgvi" in result.failures[0].reason


def test_a_candidate_missing_a_sample_fails_and_names_it(triplet_results, tmp_path, run_cli):
    fewer = _edited_copy(triplet_results, tmp_path / "fewer", lambda s: s[s.sample_id != "tennis/00011"])
    result, _ = run_gate(triplet_results, fewer)
    assert not result.passed and {r.status for r in result.rows} == {"samples_changed"}
    assert all("n 5 -> 4" in r.reason and "missing in the candidate 1: tennis/00011" in r.reason for r in result.rows)
    # the same through the CLI, against a committed aggregates JSON baseline (sample count and ids hash)
    assert run_cli("gate", "--baseline", triplet_results, "--candidate", triplet_results,
                   "--out", tmp_path / "b")[0] == 0
    code, out, _ = run_cli("gate", "--baseline", tmp_path / "b/aggregates.json", "--candidate", fewer,
                           "--out", tmp_path / "r")
    assert code == 1 and "2 samples changed" in out
    report = json.loads((tmp_path / "r/gate.json").read_text())
    assert report["counts"] == {"samples_changed": 2} and all("n 5 -> 4" in r["reason"] for r in report["rows"])
    assert "❌ sample set changed" in (tmp_path / "r/gate.md").read_text()


def test_the_same_count_of_other_samples_fails(triplet_results, tmp_path, run_cli):
    other = _edited_copy(triplet_results, tmp_path / "other",
                         lambda s: s.assign(sample_id=s.sample_id.replace("tennis/00011", "tennis/00012")))
    result, _ = run_gate(triplet_results, other)
    assert {r.status for r in result.rows} == {"samples_changed"}
    assert "missing in the candidate 1: tennis/00011; only in the candidate 1: tennis/00012" in result.rows[0].reason
    assert run_cli("gate", "--baseline", triplet_results, "--candidate", triplet_results,
                   "--out", tmp_path / "b")[0] == 0
    from_json, _ = run_gate(tmp_path / "b/aggregates.json", other)
    assert {r.status for r in from_json.rows} == {"samples_changed"}
    assert "sample-set sha256" in from_json.rows[0].reason


def test_the_newest_complete_run_of_a_request_counts_in_every_reader(triplet_results, tmp_path, run_cli):
    """Two complete runs of one request (the older one edited to read 1 dB lower): gate, leaderboard show,
    leaderboard build and runs list all take the newer one and name the older one as superseded."""
    results = _shifted_copy(triplet_results, tmp_path / "results", "psnr", -1.0)
    (older,) = [p.name for p in results.iterdir() if (p / SAMPLES_FILE).is_file()]
    time.sleep(1.1)  # run ids and creation times have a resolution of one second
    newer = score("sample-triplets", results, method="linear_blend", fresh=True).name
    expected = read_samples(results / newer).query("metric == 'psnr'").value.mean()

    code, out, err = run_cli("gate", "--baseline", triplet_results, "--candidate", results)
    assert code == 0 and "PASSED" in out
    assert f"run {older} is superseded by {newer}" in err
    code, out, err = run_cli("leaderboard", "show", "--results", results)
    table_rows = [line for line in out.splitlines() if "linear_blend" in line and "│" in line]
    assert code == 0 and len(table_rows) == 2 and f"{expected:.6g}" in out  # psnr:amt and ssim:amt rows
    assert f"run {older} is superseded by {newer}" in err
    code, out, err = run_cli("leaderboard", "build", "--results", results, "--out", tmp_path / "site")
    assert code == 0 and f"run {older} is superseded by {newer}" in err
    site = json.loads((tmp_path / "site/data/leaderboard.json").read_text())
    reproduced = [r for r in site["rows"] if r["reproduced"] is not None]
    assert {r["run_id"] for r in reproduced} == {newer} and len(reproduced) == 2
    code, out, _ = run_cli("runs", "list", "--results", results)
    assert code == 0 and f"superseded by {newer}" in out.replace("\n", "")
