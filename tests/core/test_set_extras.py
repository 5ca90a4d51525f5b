"""A set-level metric's extras (KID's subsets, std and set sizes here) reach ``run.json`` and survive a resume.

KID runs on the FID Inception with weights built by the weights rule (docs/weights_rule.md), so the
module runs offline; the generated images are the sample portraits' own reference photos.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, fill_with_references, rule_inception
from triptych.metrics.fid import inception_features
from triptych.metrics.kid import kid_from_features
from triptych.results import RUN_FILE, json_safe, read_run
from triptych.scoring import SET_PART, score

SAMPLE = REPO / "datasets/samples/portraits"
BENCH = "celeb-25id-40prompt"
PARAMS = {"refs": str(SAMPLE), "ids": "found", "prompts": "2", "images_per_prompt": "2"}


@pytest.fixture()
def pred_dir(tmp_path, run_cli) -> tuple[Path, list[dict]]:
    """The personalization layout, image ``k`` of each row holding reference ``k mod n`` of its identity."""
    out = tmp_path / "generated"
    code, _, err = run_cli("personalization", "init", "--out", out, "--refs", SAMPLE, "--ids", "found",
                           "--prompts", "2", "--images-per-prompt", "2")
    assert code == 0, err
    return out, fill_with_references(out, SAMPLE)


def test_set_metric_extras_reach_run_json_and_survive_a_resume(kid_rule, pred_dir, tmp_path, capsys):
    src, rows = pred_dir
    out = tmp_path / "results"
    run_dir = score(BENCH, out, pred_dir=src, metrics=["kid:rule"], params=PARAMS)
    (summary,) = read_run(run_dir)["metrics"]
    extras = summary["extras"]

    real = [p for name in ("newton_man", "scarletthead_woman") for p in sorted((SAMPLE / name).iterdir())]
    features = inception_features(real, rule_inception())
    expected = kid_from_features(features, features[[real.index(r["source"]) for r in rows]], **kid_rule.params)
    assert extras == json_safe(expected.extras())
    assert (extras["n_real"], extras["n_fake"]) == (len(real), len(rows))  # 8 reference photos, 8 images
    assert extras["subset_size"] == min(kid_rule.params["subset_size"], len(real), len(rows))
    assert extras["subsets"] == kid_rule.params["subsets"] and extras["std"] > 0

    # killed after the set part was written, before the run was finished: status running, no summary
    run = read_run(run_dir)
    del run["metrics"]
    (run_dir / RUN_FILE).write_text(json.dumps({**run, "status": "running"}))
    set_part = run_dir / "parts" / f"{SET_PART}.parquet"
    written = set_part.stat().st_mtime_ns
    capsys.readouterr()
    assert score(BENCH, out, pred_dir=src, metrics=["kid:rule"], params=PARAMS) == run_dir
    assert f"resuming run {run_dir.name}" in capsys.readouterr().err
    assert set_part.stat().st_mtime_ns == written  # not measured again: the extras come from the part
    (resumed,) = read_run(run_dir)["metrics"]
    assert resumed["extras"] == extras and read_run(run_dir)["status"] == "complete"


def test_extras_are_written_as_plain_json():
    """numpy scalars and arrays become numbers and lists; inf and NaN become strings (docs/conventions.md)."""
    safe = json_safe({"rank": np.int64(3), "ratio": np.float64(math.inf), "norms": np.array([[1.5, -np.inf]]),
                      "bad": float("nan"), "full": np.bool_(True)})
    assert safe == {"rank": 3, "ratio": "inf", "norms": [[1.5, "-inf"]], "bad": "nan", "full": True}
    assert type(safe["rank"]) is int and type(safe["full"]) is bool
    assert json.loads(json.dumps(safe, allow_nan=False)) == safe
