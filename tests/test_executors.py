"""Determinism across executors and worker counts: the same rows, bit for bit, however samples are spread."""

from __future__ import annotations

import pytest

from triptych.errors import TriptychError
from triptych.results import read_run, read_samples
from triptych.scoring import score


def _rows(run_dir):
    rows = read_samples(run_dir)
    return list(zip(rows.sample_id, rows.metric, rows.metric_variant, rows.value))


@pytest.mark.parametrize("bench,method", [("sample-triplets", "linear_blend"), ("sample-portraits", "other_id")])
def test_two_local_workers_give_the_rows_of_one(tmp_path, bench, method):
    one = score(bench, tmp_path / "one", method=method)
    two = score(bench, tmp_path / "two", method=method, workers=2)
    assert _rows(one) == _rows(two)
    assert read_run(two)["executor"] == {"name": "local", "workers": 2, "ray_address": None}


def test_ray_gives_the_rows_of_the_local_executor(tmp_path):
    pytest.importorskip("ray")
    local = score("sample-triplets", tmp_path / "local", method="linear_blend")
    on_ray = score("sample-triplets", tmp_path / "ray", method="linear_blend", executor="ray", workers=2)
    assert _rows(local) == _rows(on_ray)


def test_an_error_in_a_worker_keeps_its_message_and_fix(tmp_path):
    (tmp_path / "pred/tennis").mkdir(parents=True)
    for c in (1, 6, 11, 16, 21):  # every prediction present (checked up front), none decodes
        (tmp_path / f"pred/tennis/{c:05d}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(TriptychError) as info:
        score("sample-triplets", tmp_path / "r", pred_dir=tmp_path / "pred", workers=2)
    # two workers: whichever corrupt middle frame fails first is the one reported (centres 1, 6, 11, 16, 21)
    assert any(f"{c:05d}.png" in info.value.message for c in (1, 6, 11, 16, 21))
    assert "the same command resumes" in info.value.fix


def test_unknown_executor_is_refused(tmp_path):
    with pytest.raises(TriptychError, match="unknown executor 'dask'"):
        score("sample-triplets", tmp_path, method="linear_blend", executor="dask")
