"""The gate's outputs: a one-screen terminal table, a Markdown summary (pull-request comment) and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from triptych.atomic import atomic_write_text
from triptych.leaderboard.gate import GateResult, GateRow, aggregates_json

SCREEN_ROWS = 15  # rows shown in the terminal; the reports hold all of them
_STYLE = {"regression": "bold red", "version_changed": "bold red", "variant_changed": "bold red",
          "data_changed": "bold red", "samples_changed": "bold red", "missing": "bold red", "unknown_metric": "bold red", "improved": "green", "new": "cyan", "within_tolerance": "",
          "within_noise": "", "unchanged": "dim"}
_MD_MARK = {"regression": "❌ regression", "version_changed": "❌ version changed",
            "variant_changed": "❌ protocol variant changed", "data_changed": "❌ data changed",
            "samples_changed": "❌ sample set changed",
            "missing": "❌ missing", "unknown_metric": "❌ unknown metric", "improved": "✅ improved", "new": "🆕 new",
            "within_tolerance": "✅ within tolerance", "within_noise": "✅ within noise",
            "unchanged": "✅ unchanged"}


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


def _delta(row: GateRow) -> str:
    return "—" if row.delta is None else f"{row.delta:+.6g}"


def _interval(row: GateRow) -> str:
    """The significance rule's interval of the paired difference (candidate - baseline), or —."""
    if row.interval is None:
        return "—"
    if row.interval.get("low") is None:
        return f"none ({row.interval.get('note')})"
    return (f"[{row.interval['low']:+.4g}, {row.interval['high']:+.4g}] {row.interval['level'] * 100:g}% / "
            f"{row.interval['units']} {row.interval['unit']}")


def summary_line(result: GateResult) -> str:
    counts = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in result.counts().items())
    return f"gate {'PASSED' if result.passed else 'FAILED'}: {len(result.rows)} row(s) — {counts or 'nothing compared'}"


def print_screen(result: GateResult, console: Console | None = None, report_dir: Path | None = None) -> None:
    """Failing rows first (which row, old vs new, tolerance, direction, why), then the verdict."""
    console = console or Console(width=160)
    shown = [r for r in result.rows if r.status not in ("unchanged", "within_tolerance")] or result.rows
    table = Table("status", "row", "baseline", "candidate", "Δ", "tolerance", "better", "why",
                  title=f"triptych gate: {result.candidate} vs {result.baseline}", title_justify="left")
    for row in shown[:SCREEN_ROWS]:
        table.add_row(row.status.replace("_", " "), escape(row.label), _num(row.baseline), _num(row.candidate),
                      _delta(row), row.tolerance or "—", row.direction or "—", escape(row.reason),
                      style=_STYLE.get(row.status, ""))
    console.print(table)
    hidden = len(result.rows) - min(len(shown), SCREEN_ROWS)
    if hidden:
        where = f" (all rows in {report_dir / 'gate.md'})" if report_dir else ""
        console.print(f"{hidden} more row(s) not shown{where}")
    console.print(summary_line(result), style="bold green" if result.passed else "bold red")


def markdown(result: GateResult) -> str:
    """A Markdown summary for a pull-request comment: the verdict, failures first, every row in a table."""
    lines = [f"## triptych gate: {'✅ passed' if result.passed else '❌ failed'}", "",
             f"Candidate `{result.candidate}` against baseline `{result.baseline}`. {summary_line(result)}.", ""]
    for row in result.failures:
        lines.append(f"- **{row.status.replace('_', ' ')}** `{row.label}`: {row.reason}")
    if result.failures:
        lines.append("")
    lines += ["| | benchmark / split | bench. variant | method | metric | version | baseline | candidate | Δ | "
              "interval of Δ | P(worse) | tolerance | better | note |",
              "|---|---|---|---|---|---|---:|---:|---:|---|---:|---|---|---|"]
    for row in result.rows:
        k = row.key
        version = (f"{row.baseline_version} → {row.candidate_version}" if row.status == "version_changed"
                   else str(k["metric_version"]))
        lines.append(f"| {_MD_MARK[row.status]} | {k['benchmark']}/{k['split']} | {k['benchmark_variant']} | "
                     f"{k['method']} | {k['metric']}:{k['metric_variant']} | {version} | {_num(row.baseline)} | "
                     f"{_num(row.candidate)} | {_delta(row)} | {_interval(row)} | {_num(row.probability)} | "
                     f"{row.tolerance or '—'} | {row.direction or '—'} | "
                     f"{row.reason.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def write_reports(result: GateResult, candidate: pd.DataFrame, out: Path) -> list[Path]:
    """``gate.md``, ``gate.json`` and ``aggregates.json`` (the candidate's, to commit as the next baseline)."""
    return [atomic_write_text(out / "gate.md", markdown(result)),
            atomic_write_text(out / "gate.json", json.dumps(result.to_json(), indent=2)),
            atomic_write_text(out / "aggregates.json", json.dumps(aggregates_json(candidate), indent=2))]
