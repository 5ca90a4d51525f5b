"""CI must call the README's test command (the two commands at the top of the README)."""

from __future__ import annotations

import re

from conftest import REPO


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```(?:bash|sh)\n(.*?)\n```", text, flags=re.S)[:2]


def test_readme_starts_with_set_up_and_test_commands():
    setup, tests = _readme_commands()
    assert "constraints.txt" in setup and "triptych demo" in setup
    assert tests.strip() == ".venv/bin/pytest"


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci/run").read_text(encoding="utf-8")
    _, tests = _readme_commands()
    assert re.search(rf"^run_pytest no {re.escape(tests.strip())}$", ci, flags=re.M)
    assert "-c constraints.txt" in ci
