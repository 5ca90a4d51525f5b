"""Rewrite the README's speed table from the performance suites' pytest-benchmark JSON (docs/performance.md).

    .venv/bin/pytest -m slow tests/perf/test_speed_targets.py tests/perf/test_scale.py --benchmark-enable \
        --benchmark-json speed.json
    .venv/bin/python scripts/speed_table.py speed.json

Every benchmark that recorded a ``speed_row`` (tests/perf/test_speed_targets.py, and the Ray target of
tests/perf/test_scale.py) becomes the row of its
suite: the result with its ratio, the target and whether it was met (or "busy": measured on a loaded
machine, not judged), and the machine with its load. Rows of the table that no given file measures are
kept as they are. Only the lines between the table's markers change.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

START = "<!-- speed-table: scripts/speed_table.py writes the rows below from the suites' --benchmark-json -->"
END = "<!-- /speed-table -->"
HEADER = ["| suite | result | target | measured on |", "|---|---|---|---|"]


def measured_rows(paths: list[Path]) -> dict[str, str]:
    """Suite -> table row, from the ``speed_row`` of each benchmark in the JSON files (later files win)."""
    rows: dict[str, str] = {}
    for path in paths:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SystemExit(f"error: {path}: not a pytest-benchmark JSON file ({exc})\n"
                             "  fix: write one with pytest ... --benchmark-enable --benchmark-json FILE")
        for bench in doc.get("benchmarks", []):
            row = bench.get("extra_info", {}).get("speed_row")
            if row is None:
                continue
            verdict = {"busy": "busy: not judged", "recorded": "recorded on CI, not judged"}.get(row["status"],
                                                                                                   row["status"])
            rows[row["suite"]] = (f"| {row['suite']} | {row['result']} | {row['target']} ({verdict}) | "
                                  f"{row['machine']}; other processes {row['load']:g} CPUs |")
    if not rows:
        raise SystemExit(f"error: no speed rows in {', '.join(map(str, paths))}\n"
                         "  fix: run tests/perf/test_speed_targets.py with --benchmark-enable --benchmark-json FILE")
    return rows


def rewrite(readme: str, rows: dict[str, str]) -> str:
    """``readme`` with the table between the markers updated by suite (first cell); new suites appended."""
    if START not in readme or END not in readme:
        raise SystemExit(f"error: the README has no speed table markers ({START!r} ... {END!r})\n"
                         "  fix: restore them around the table of 'Speed and memory'")
    head, rest = readme.split(START, 1)
    table, tail = rest.split(END, 1)
    kept = [line for line in table.strip().splitlines() if line.startswith("|") and line not in HEADER]
    merged: dict[str, str] = {line.split("|")[1].strip(): line for line in kept}
    merged.update(rows)
    return head + START + "\n" + "\n".join(HEADER + list(merged.values())) + "\n" + END + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+", type=Path, help="pytest-benchmark JSON files (--benchmark-json)")
    parser.add_argument("--readme", type=Path, default=Path(__file__).resolve().parents[1] / "README.md")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    args.readme.write_text(rewrite(text, measured_rows(args.json)), encoding="utf-8")
    print(f"{args.readme}: speed table updated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
