"""``scripts/speed_table.py``: the README's speed table rewritten from the suites' --benchmark-json
(docs/performance.md). Rows of measured suites are replaced or appended, the others kept, nothing outside
the markers changes; a file without speed rows or a README without markers is refused with the fix."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

SCRIPT = REPO / "scripts/speed_table.py"


def _row(suite: str, status: str, load: float) -> dict:
    return {"extra_info": {"speed_row": {"suite": suite, "result": f"{suite} result", "value": 1.0,
                                         "target": ">= 3x", "status": status, "load": load, "cpus": 2,
                                         "machine": "CPU X, 2 CPUs available"}}}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_rows_are_replaced_by_suite_kept_or_appended_and_the_rest_is_untouched(tmp_path):
    readme = tmp_path / "README.md"
    start = "<!-- speed-table: scripts/speed_table.py writes the rows below from the suites' --benchmark-json -->"
    readme.write_text(f"intro\n\n{start}\n| suite | result | target | measured on |\n|---|---|---|---|\n"
                      "| old suite | 5 s | — | before |\n| a | stale | >= 3x (met) | old machine; load 0.1 |\n"
                      "<!-- /speed-table -->\n\nafter\n", encoding="utf-8")
    bench = tmp_path / "speed.json"
    bench.write_text(json.dumps({"benchmarks": [_row("a", "met", 0.4), _row("b", "busy", 7.5),
                                                _row("c", "recorded", 0.1), {"extra_info": {}}]}), encoding="utf-8")
    assert _run(str(bench), "--readme", str(readme)).returncode == 0
    lines = readme.read_text(encoding="utf-8").splitlines()
    assert lines[:3] == ["intro", "", start] and lines[-2:] == ["", "after"]
    table = lines[3:-3]
    assert table == ["| suite | result | target | measured on |", "|---|---|---|---|",
                     "| old suite | 5 s | — | before |",
                     "| a | a result | >= 3x (met) | CPU X, 2 CPUs available; other processes 0.4 CPUs |",
                     "| b | b result | >= 3x (busy: not judged) | CPU X, 2 CPUs available; other processes 7.5 CPUs |",
                     "| c | c result | >= 3x (recorded on CI, not judged) | CPU X, 2 CPUs available; other processes "
                     "0.1 CPUs |"]


def test_no_speed_rows_or_no_markers_is_refused_with_the_fix(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"benchmarks": [{"extra_info": {}}]}), encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text("no table\n", encoding="utf-8")
    done = _run(str(empty), "--readme", str(readme))
    assert done.returncode != 0 and "no speed rows" in done.stderr and "fix:" in done.stderr
    full = tmp_path / "speed.json"
    full.write_text(json.dumps({"benchmarks": [_row("a", "met", 0.4)]}), encoding="utf-8")
    done = _run(str(full), "--readme", str(readme))
    assert done.returncode != 0 and "markers" in done.stderr and readme.read_text() == "no table\n"


def test_the_readme_has_the_markers_and_the_header():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "<!-- speed-table:" in text and "<!-- /speed-table -->" in text
    assert "| suite | result | target | measured on |" in text
