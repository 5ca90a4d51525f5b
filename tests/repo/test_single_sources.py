"""One definition of every list, and no two classes of the same name (issue #19, item 5); one builder of a
results row (issue #19, item 3).

The task list lives in ``triptych/data/tasks.yaml`` (read by ``triptych.task_list``), the image suffixes in
``triptych.media``; every other module imports them. These tests read the package's source with ``ast``, so a
new copy of a list, or a second class named like an existing one, fails here.
"""

from __future__ import annotations

import ast
import csv
import inspect
from collections import defaultdict
from pathlib import Path

from conftest import REPO

from triptych.media import IMAGE_SUFFIXES
from triptych.methods import PROTOCOLS
from triptych.task_list import REFERENCE_METHODS, TASK_INFO, TASKS

PACKAGE_FOLDERS = ("triptych", "metrics", "baselines", "benchmarks", "pipelines", "leaderboard")


def _modules() -> dict[str, ast.Module]:
    return {str(path.relative_to(REPO)): ast.parse(path.read_text(), str(path))
            for folder in PACKAGE_FOLDERS for path in sorted((REPO / folder).rglob("*.py"))}


def _literal(node: ast.AST) -> object:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return None


def test_no_module_spells_out_the_task_list() -> None:
    """No literal tuple, list, set or dict (by its keys) names two tasks or more: the list is tasks.yaml."""
    copies = []
    for path, tree in _modules().items():
        for node in ast.walk(tree):
            items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
            if not isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)) or items is None:
                continue
            named = {_literal(item) for item in items if isinstance(item, ast.Constant)} & set(TASKS)
            if len(named) >= 2:
                copies.append(f"{path}:{node.lineno}")
    assert copies == [], "import the list from triptych.task_list"


def test_image_suffixes_are_defined_once() -> None:
    copies = [f"{path}:{node.lineno}" for path, tree in _modules().items() for node in tree.body
              if isinstance(node, ast.Assign) and path != "triptych/media.py"
              and _literal(node.value) in (IMAGE_SUFFIXES, list(IMAGE_SUFFIXES), set(IMAGE_SUFFIXES))]
    assert copies == [], "import IMAGE_SUFFIXES from triptych.media"


def test_no_two_modules_define_a_class_or_type_of_the_same_name() -> None:
    """Classes and module-level type aliases (``Name = tuple[...]``); type variables are local by nature."""
    where: dict[str, list[str]] = defaultdict(list)
    for path, tree in _modules().items():
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                where[node.name].append(path)
            elif (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                  and node.targets[0].id[:1].isupper() and not node.targets[0].id.isupper()
                  and not (isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "TypeVar")):
                where[node.targets[0].id].append(path)
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}


def test_every_task_has_its_method_protocol() -> None:
    assert list(PROTOCOLS) == list(TASKS)
    assert all(inspect.isclass(p) and getattr(p, "_is_protocol", False) for p in PROTOCOLS.values())
    assert [PROTOCOLS[t.name].__name__ for t in TASK_INFO] == [t.method_protocol for t in TASK_INFO]


def test_reference_methods_are_published_systems_of_their_task() -> None:
    """Each task's reference methods have reported rows of that task in the packaged thesis tables."""
    with open(REPO / "leaderboard/data/thesis_tables.csv", newline="") as f:
        published = {(row["task"], row["method"]) for row in csv.DictReader(f)}
    assert {task for task, _ in published} == set(TASKS)
    missing = [(task, m) for task, methods in REFERENCE_METHODS.items() for m in methods if (task, m) not in published]
    assert missing == []


def test_every_results_row_comes_from_result_row() -> None:
    """A dict literal with a row's ``run_id``, ``sample_id`` and ``metric_version`` keys is a results row built
    by hand; only ``triptych.results.result_row`` builds one, so the columns are spelled once."""
    row_keys = {"run_id", "sample_id", "metric_version"}
    builders = {path for path, tree in _modules().items() for node in ast.walk(tree)
                if isinstance(node, ast.Dict) and row_keys <= {_literal(k) for k in node.keys if k is not None}}
    assert builders - {"triptych/results.py"} == set()
