"""Bad inputs of ``triptych reproduce``, ``triptych efficiency`` and ``score --device`` (catalogue section
"Reproduce, efficiency and devices" of docs/bad_inputs.md): each exits 2 with the value and the fix named."""

from __future__ import annotations

import pytest

from bad_input_cases import SAMPLE, Case

CASES = [
    Case("reproduce-unknown-table", lambda t: ["reproduce", "5.5", "--dry-run", "--data-root", t],
         ("table '5.5' is not one triptych reproduces", "3.1, 4.1, 4.2, 5.4")),
    Case("reproduce-method-not-in-table", lambda t: ["reproduce", "4.1", "--method", "e2fgvi", "--dry-run",
                                                     "--data-root", t],
         ("method 'e2fgvi' reproduces no row of table 4.1", "amt-s, amt-l, amt-g")),
    Case("efficiency-not-a-reference-model", lambda t: ["efficiency", "--method", "mean_fill", "--runs", "0",
                                                        "--out", t / "e.json"],
         ("method 'mean_fill' is not a reference model", "amt-s, e2fgvi, photomaker-v1")),
    Case("efficiency-negative-runs", lambda t: ["efficiency", "--method", "amt-s", "--runs", "-1", "--out",
                                                t / "e.json"],
         ("--runs -1", "--runs 0 to count only")),
    Case("efficiency-time-without-weights", lambda t: ["efficiency", "--method", "photomaker-v1", "--runs", "1",
                                                       "--out", t / "e.json"],
         ("timing needs its weights (sdxl_base_1_0, photomaker_v1)", "triptych generate")),
    Case("score-device-with-pred-dir", lambda t: ["score", "--benchmark", "sample-triplets", "--pred-dir",
                                                  SAMPLE / "tennis/frames", "--device", "cuda", "--out", t / "r"],
         ("--device cuda: a prediction folder runs no model", "leave out --device")),
    Case("score-device-not-taken", lambda t: ["score", "--benchmark", "sample-triplets", "--method", "linear_blend",
                                              "--device", "cuda", "--out", t / "r"],
         ("--device cuda: method 'linear_blend' takes no device", "leave out --device")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_error(case, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    code, out, err = run_cli(*case.setup(tmp_path))
    assert code == 2, err
    assert out == "" and err.startswith("error: ")
    for expected in case.expect:
        assert expected in err, f"{expected!r} not in:\n{err}"
    assert not (tmp_path / "e.json").exists()
