"""Shared test helpers: where the golden fixtures are, and how to run the CLI in-process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRIPTYCH_SHARED", REPO.parent / "shared"))
FIXTURES = SHARED / "fixtures"


def _require_shared() -> None:
    if not FIXTURES.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"golden fixtures not found at {FIXTURES}: CI must run with ../shared beside the clone")
        pytest.skip(f"golden fixtures not found at {FIXTURES} (set TRIPTYCH_SHARED)")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    _require_shared()
    return FIXTURES


@pytest.fixture(scope="session")
def inpainting_expected(fixtures_dir: Path) -> dict:
    return json.loads((fixtures_dir / "inpainting/tennis/expected.json").read_text())


@pytest.fixture(scope="session")
def vfi_expected(fixtures_dir: Path) -> dict:
    return json.loads((fixtures_dir / "vfi/expected.json").read_text())


@pytest.fixture()
def run_cli(capsys):
    """Run ``triptych ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from triptych.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
