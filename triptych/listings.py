"""The records behind ``triptych list metrics|benchmarks|methods|weights`` and their one-line text form.

Each kind is a list of records with structured fields (``--json``), sorted by name: metrics give one record
per metric variant (``name``, ``variant``, ``version``, ...). The text form is one line per record in aligned
columns that fit the terminal, at most ``MAX_WIDTH`` characters: the last column (the description) is cut
with ``…`` where it would not fit; ``--json`` holds it whole.
"""

from __future__ import annotations

import shutil
from typing import Any, Callable, Sequence

from triptych.registry import registry
from triptych.task_list import TASK_SHORT

MAX_WIDTH = 100


def _plugin(spec: Any) -> str | None:
    return " ".join(spec.plugin) if spec.plugin else None


def metric_records() -> list[dict[str, Any]]:
    return sorted(({"name": s.name, "variant": v.name, "version": v.version, "level": s.level,
                    "direction": s.direction, "unit": s.unit, "tasks": list(s.tasks), "protocol": v.protocol,
                    "weights": list(v.weights), "inputs": v.inputs.declared(), "description": v.description,
                    "metric_description": s.description, "plugin": _plugin(s)}
                   for s in registry().metrics.values() for v in s.variants.values()),
                  key=lambda r: (r["name"], r["variant"]))


def benchmark_records() -> list[dict[str, Any]]:
    return sorted(({"name": s.name, "split": s.split, "task": s.task, "version": s.version,
                    "variants": list(s.variants), "default_variant": s.default_variant,
                    "metrics": [f"{m}:{v}" for m, v in s.metrics], "sampling_unit": s.sampling_unit.name,
                    "description": s.description, "plugin": _plugin(s)} for s in registry().benchmarks.values()),
                  key=lambda r: r["name"])


def method_records() -> list[dict[str, Any]]:
    return sorted(({"name": s.name, "task": s.task, "version": s.version, "weights": list(s.weights),
                    "inputs": s.inputs.declared(), "description": s.description, "plugin": _plugin(s)}
                   for s in registry().methods.values()),
                  key=lambda r: r["name"])


def weight_records() -> list[dict[str, Any]]:
    from triptych.weights import list_entries

    return sorted(list_entries(), key=lambda r: r["name"])


def _inputs(declared: dict[str, str]) -> str:
    """A record's declared inputs (triptych.inputs) in short: an optional one marked ``?`` (``masks,trunk?``),
    ``-`` for none."""
    return ",".join(n if mode == "required" else f"{n}?" for n, mode in declared.items()) or "-"


def _tasks(tasks: Sequence[str]) -> str:
    return ",".join(TASK_SHORT.get(t, t) for t in tasks)


# Per kind: the records, and the text columns (header, cell of a record); the last column is cut to fit.
ListingColumn = tuple[str, Callable[[dict[str, Any]], str]]
KINDS: dict[str, tuple[Callable[[], list[dict[str, Any]]], list[ListingColumn]]] = {
    "metrics": (metric_records, [("metric:variant", lambda r: f"{r['name']}:{r['variant']}"),
                                 ("ver", lambda r: f"v{r['version']}"), ("level", lambda r: r["level"]),
                                 ("better", lambda r: r["direction"]), ("tasks", lambda r: _tasks(r["tasks"])),
                                 ("source", lambda r: r["protocol"])]),  # inputs: in --json (room for the source)
    "benchmarks": (benchmark_records, [("benchmark", lambda r: r["name"]), ("task", lambda r: _tasks([r["task"]])),
                                       ("ver", lambda r: f"v{r['version']}"),
                                       ("variants", lambda r: ",".join(r["variants"])),
                                       ("description", lambda r: r["description"])]),
    "methods": (method_records, [("method", lambda r: r["name"]), ("task", lambda r: _tasks([r["task"]])),
                                 ("ver", lambda r: f"v{r['version']}"), ("inputs", lambda r: _inputs(r["inputs"])),
                                 ("description", lambda r: r["description"])]),
    "weights": (weight_records, [("name", lambda r: r["name"]), ("here", lambda r: "yes" if r["present"] else "no"),
                                 ("pin", lambda r: _cut(r["pin"], 15)), ("format", lambda r: r["format"]),
                                 ("description", lambda r: r["description"])]),
}


def width() -> int:
    """The terminal's width (``COLUMNS`` first; 100 when stdout is not a terminal), at most ``MAX_WIDTH``."""
    return min(shutil.get_terminal_size((MAX_WIDTH, 24)).columns, MAX_WIDTH)


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _cut(text: str, room: int) -> str:
    return text if len(text) <= room else text[:max(room - 1, 0)] + "…"


def text_lines(records: Sequence[dict[str, Any]], columns: Sequence[ListingColumn], total: int) -> list[str]:
    """A header and one line per record, columns aligned, every line at most ``total`` characters."""
    cells = [[_one_line(cell(r)) for _, cell in columns[:-1]] for r in records]
    header = [name for name, _ in columns]
    widths = [max(len(row[i]) for row in [header[:-1], *cells]) for i in range(len(columns) - 1)]
    lines = []
    for row, last in [(header[:-1], header[-1]), *((c, columns[-1][1](r)) for c, r in zip(cells, records))]:
        head = "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  "
        lines.append(_cut(head + _cut(_one_line(last), total - len(head)), total).rstrip())
    return lines
