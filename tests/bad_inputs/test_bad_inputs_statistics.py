"""Bad inputs of the statistics commands (docs/statistics.md): compare, power, --seeds, interval settings and
the gate's significance rule. Each gets a clear error through the real CLI (docs/bad_inputs.md)."""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bad_input_cases import Case
from triptych.results import SAMPLES_FILE, SCHEMA, read_samples


@functools.lru_cache(maxsize=1)
def _scored() -> Path:
    """One sample-triplets run of linear_blend, scored once for every case (its folder is copied, never edited)."""
    from triptych.scoring import score

    return score("sample-triplets", Path(tempfile.mkdtemp(prefix="bad-stats-")) / "results", method="linear_blend")


def _copy(tmp: Path, name: str, edit_run=None, drop: str | None = None) -> Path:
    run = shutil.copytree(_scored(), tmp / name / _scored().name)
    if edit_run is not None:
        doc = json.loads((run / "run.json").read_text())
        edit_run(doc)
        (run / "run.json").write_text(json.dumps(doc))
    if drop is not None:
        samples = read_samples(run)
        pq.write_table(pa.Table.from_pandas(samples[samples.sample_id != drop], schema=SCHEMA, preserve_index=False),
                       run / SAMPLES_FILE)
    return run


def _compare_with(**kwargs):
    def setup(tmp: Path) -> list:
        return ["compare", _copy(tmp, "a"), _copy(tmp, "b", **kwargs)]
    return setup


def _gate_rules(text: str, baseline_json: bool = False):
    def setup(tmp: Path) -> list:
        (tmp / "gate.yaml").write_text(text)
        base = _copy(tmp, "base").parent
        if baseline_json:
            from triptych.leaderboard.gate import aggregates_json, load_aggregates

            (tmp / "aggregates.json").write_text(json.dumps(aggregates_json(load_aggregates(base))))
            base = tmp / "aggregates.json"
        return ["gate", "--baseline", base, "--candidate", _copy(tmp, "cand").parent, "--rules", tmp / "gate.yaml"]
    return setup


def _variant(doc: dict) -> None:
    doc["benchmark_variant"] = "other"


def _running(doc: dict) -> None:
    doc["status"] = "running"


SCORE = ["score", "--benchmark", "sample-triplets", "--method", "linear_blend"]
CASES = [
    Case("compare-different-samples", _compare_with(drop="tennis/00011"),
         ("different samples", "only in", "tennis/00011")),
    Case("compare-other-variant", _compare_with(edit_run=_variant), ("differ in benchmark variant", "'other'")),
    Case("compare-unfinished-run", _compare_with(edit_run=_running), ("is 'running', not complete",)),
    Case("power-one-run", lambda t: ["power", "--benchmark", "sample-triplets", "--metric", "psnr", "--results",
                                     _copy(t, "one").parent], ("needs two", "sample-triplets")),
    Case("power-unknown-metric", lambda t: ["power", "--benchmark", "sample-triplets", "--metric", "lpips",
                                            "--results", _copy(t, "one").parent], ("0 variant(s) of 'lpips'",)),
    Case("power-bad-alpha", lambda t: ["power", "--benchmark", "sample-triplets", "--metric", "psnr", "--alpha", "5",
                                       "--results", t], ("--alpha 5.0", "(0, 1)")),
    Case("ci-unknown-method", lambda t: [*SCORE, "--ci-method", "bootstrap", "--out", t], ("'bootstrap'", "BCa")),
    Case("ci-level-in-percent", lambda t: [*SCORE, "--ci-level", "95", "--out", t], ("between 0 and 1",)),
    Case("ci-too-few-resamples", lambda t: [*SCORE, "--ci-resamples", "10", "--out", t], ("10 resamples",)),
    Case("seeds-without-seed-parameter", lambda t: [*SCORE, "--seeds", "2", "--out", t], ("has no seed parameter",)),
    Case("seeds-past-2-32", lambda t: ["score", "--benchmark", "celeb-25id-40prompt", "--method", "copy-jitter",
                                       "--param", "seed=4294967000", "--seeds", "2", "--out", t],
         ("pass 2^32", "torch's CPU generator")),
    Case("gate-significance-on-aggregates-json", _gate_rules("psnr: {significance: 0.95}\n", baseline_json=True),
         ("significance rule needs per-sample rows", "results folders")),
    Case("gate-significance-not-a-level", _gate_rules("psnr: {absolute: 0.1, significance: 95}\n"),
         ("not a probability level",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_error(case, tmp_path, run_cli):
    case.assert_refused(*run_cli(*case.setup(tmp_path)))
