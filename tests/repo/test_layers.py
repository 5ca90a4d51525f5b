"""The layers of docs/architecture.md, enforced on the import graph read from the source (``ast``).

Every ``import`` counts, at module level or inside a function (a lazy import is still a dependency). A module
may import its own layer or the layers below it; no import may go up a layer or close a cycle; inside the
task-parts layer a folder imports only the folders ``TASK_PARTS_MAY_IMPORT`` allows. The imports that break
these rules today are listed below, each with the item of issue #19 that removes it: a NEW violation fails,
and so does a listed one that is gone (take it off the list, so that it cannot come back unseen).
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

# The distribution's folders and the package each is installed as (pyproject.toml, package-dir).
PACKAGE_DIRS = {"triptych": "triptych", "metrics": "triptych.metrics", "baselines": "triptych.baselines",
                "benchmarks": "triptych.benchmarks", "pipelines": "triptych.pipelines",
                "leaderboard": "triptych.leaderboard"}

KERNEL, TOOLKITS, TASK_PARTS, ORCHESTRATION, CLI = 1, 2, 3, 4, 5
# The layer of each module, by its dotted name or the package it is in (the longest prefix wins). A new module
# of the core package (triptych/*.py) must be placed here: the test names it until it is.
LAYER_OF = {
    "triptych": KERNEL,  # the package root: __version__ (and the lazy facade below)
    **{f"triptych.{name}": KERNEL for name in (
        "errors", "atomic", "folders", "media", "manifests", "fingerprints", "weights", "weights_rule", "registry",
        "inputs",
        "schema", "stats", "results", "provenance", "methods", "progress", "labels", "published", "task_list",
        "tasks", "json_values", "threads", "allocator", "executors")},
    "triptych.vision": TOOLKITS,
    "triptych.metrics": TASK_PARTS, "triptych.baselines": TASK_PARTS, "triptych.benchmarks": TASK_PARTS,
    "triptych.pipelines": TASK_PARTS,
    **{f"triptych.{name}": ORCHESTRATION for name in (
        "scoring", "api", "compare", "measure", "measure_kinds", "reproduce", "doctor", "listings",
        "seeds", "leaderboard")},
    # the DVC stages that run the orchestrator (``triptych score``, the leaderboard) are entry points, as a
    # command is: no module imports them (docs/architecture.md)
    **{f"triptych.pipelines.{name}": ORCHESTRATION for name in ("score_sample", "leaderboard")},
    "triptych.cli": CLI, "triptych.__main__": CLI, "triptych.commands": CLI,
}
# Inside the task-parts layer: which folder may import which other (its own folder always).
TASK_PARTS_MAY_IMPORT = {("benchmarks", "metrics"),  # a benchmark applies metrics (types such as ClipPair)
                         ("pipelines", "benchmarks")}  # a data stage prepares a benchmark's layout
# The package root's PEP 562 attributes ``triptych.evaluate`` / ``triptych.Results`` import the API on first
# use; nothing in the package uses them, so this one arrow is the public facade, not a dependency.
FACADE = {("triptych", "triptych.api")}

# Imports that break the rules today, (importer, imported) -> the issue #19 item that removes it.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}
# Import cycles today, each as its set of modules -> the issue #19 item that breaks it.
KNOWN_CYCLES: dict[frozenset[str], str] = {}


def _module_files() -> dict[str, Path]:
    modules = {}
    for folder, package in PACKAGE_DIRS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Each module of the distribution -> the modules of the distribution it imports."""
    modules = _module_files()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                            for alias in node.names}
        resolved = set()
        for target in targets:
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name and (name, target) not in FACADE:
                resolved.add(target)
        graph[name] = resolved
    return graph


def layer(module: str) -> int | None:
    prefixes = [p for p in LAYER_OF if module == p or module.startswith(p + ".")]
    return LAYER_OF[max(prefixes, key=len)] if prefixes else None


def _folder(module: str) -> str:
    return module.split(".")[1]


def rule_breaks(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Imports that go up a layer, or across task-parts folders without leave."""
    breaks = set()
    for importer, imported in ((a, b) for a, targets in graph.items() for b in targets):
        if layer(imported) > layer(importer):
            breaks.add((importer, imported))
        elif (layer(importer) == layer(imported) == TASK_PARTS and _folder(importer) != _folder(imported)
              and (_folder(importer), _folder(imported)) not in TASK_PARTS_MAY_IMPORT):
            breaks.add((importer, imported))
    return breaks


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.add(frozenset(component))
    return found


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in _module_files() if layer(m) is None)
    assert unplaced == [], "place each module in LAYER_OF (tests/repo/test_layers.py) and in docs/architecture.md"


def test_no_new_upward_or_sideways_import() -> None:
    breaks = rule_breaks(import_graph())
    new = sorted(breaks - set(KNOWN_VIOLATIONS))
    assert new == [], "an import goes up a layer or across task parts (docs/architecture.md says where code goes)"
    gone = sorted(set(KNOWN_VIOLATIONS) - breaks)
    assert gone == [], "fixed: take these off KNOWN_VIOLATIONS"


def test_no_new_import_cycle() -> None:
    found = cycles(import_graph())
    assert sorted(map(sorted, found - set(KNOWN_CYCLES))) == [], "an import cycle appeared"
    assert sorted(map(sorted, set(KNOWN_CYCLES) - found)) == [], "fixed: take these off KNOWN_CYCLES"


def test_the_checks_catch_what_they_forbid() -> None:
    """On a small made-up graph: an upward import, a forbidden sideways one and a cycle are each found."""
    graph = {"triptych.errors": {"triptych.scoring"}, "triptych.scoring": {"triptych.errors"},
             "triptych.baselines.x": {"triptych.metrics.y"}, "triptych.metrics.y": set(),
             "triptych.benchmarks.z": {"triptych.metrics.y"}}
    assert rule_breaks(graph) == {("triptych.errors", "triptych.scoring"),
                                  ("triptych.baselines.x", "triptych.metrics.y")}
    assert cycles(graph) == {frozenset({"triptych.errors", "triptych.scoring"})}
