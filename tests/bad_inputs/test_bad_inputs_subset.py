"""Bad inputs of the table 3.1 benchmarks and of subset mode (catalogue: docs/bad_inputs.md, section
"DAVIS / YouTube-VOS and subset mode"), each through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from bad_input_cases import Case, assert_clear_error
from vos_fake_layouts import make_e2fgvi_davis
from triptych.pipelines.standardize_vos import main as standardize_vos


def _davis(tmp: Path, *extra: str) -> Path:
    """A data root holding a DAVIS standardized from a tiny E2FGVI layout (all of its 3 videos)."""
    data = tmp / "datasets"
    standardize_vos(["--name", "davis-test", "--layout", "e2fgvi", "--root", str(make_e2fgvi_davis(tmp / "raw")),
                     "--out", str(data / "build/vos"), *extra])
    return data


def _score(tmp: Path, data: Path, *extra: str) -> list:
    return ["score", "--benchmark", "davis", "--method", "mean_fill", "--data-root", data, "--out", tmp / "r",
            "--metric", "psnr:e2fgvi", *extra]


CASES = [
    Case("davis-not-standardized", lambda t: _score(t, t), ("davis-test", "standardize_vos", "no standardized")),
    Case("davis-reduced-without-subset", lambda t: _score(t, _davis(t)),
         ("3 video(s) / 7 frame(s) standardized", "50 videos / 3455 frames", "--subset")),
    Case("davis-other-size", lambda t: _score(t, _davis(t, "--width", "64", "--height", "48"), "--subset"),
         ("standardized at [64, 48]", "needs [432, 240]", "standardize again")),
    Case("subset-not-a-boolean", lambda t: _score(t, _davis(t), "--param", "subset=maybe"),
         ("subset='maybe' is not true or false",)),
    Case("subset-without-subset-mode", lambda t: ["score", "--benchmark", "sample-tennis", "--method", "mean_fill",
                                                   "--out", t / "r", "--subset"],
         ("unknown key(s) in the --param: 'subset'", "size, mask_dilation")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_error(case, tmp_path, run_cli, monkeypatch):
    assert_clear_error(case, tmp_path, run_cli, monkeypatch)
