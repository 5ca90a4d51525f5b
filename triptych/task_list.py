"""The tasks triptych scores, read once from ``triptych/data/tasks.yaml``: names, titles, reference methods.

Every list of tasks in the code comes from here (the registry's checks, the method protocols, listings,
the leaderboard's order and titles, the efficiency table's FLOPs units), so adding a task is one YAML entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import yaml


@dataclass(frozen=True)
class TaskInfo:
    """One task: its name (a results row's ``task``), its page title, its short name in listings, the
    published systems whose reported rows the leaderboard shows by default, the name of its method protocol
    class in ``triptych.methods``, the unit its FLOPs are printed in (name, size in FLOPs), and the
    (benchmark, method) runs of ``triptych demo`` on the embedded sample."""

    name: str
    title: str
    short: str
    reference_methods: tuple[str, ...]
    method_protocol: str
    flops_unit: tuple[str, float]
    demo_runs: tuple[tuple[str, str], ...]


def _load() -> tuple[TaskInfo, ...]:
    text = resources.files("triptych").joinpath("data/tasks.yaml").read_text(encoding="utf-8")
    return tuple(TaskInfo(name, e["title"], e["short"], tuple(e["reference_methods"]), e["method_protocol"],
                          (e["flops_unit"][0], float(e["flops_unit"][1])),
                          tuple((e["demo"]["benchmark"], method) for method in e["demo"]["methods"]))
                 for name, e in yaml.safe_load(text).items())


TASK_INFO: tuple[TaskInfo, ...] = _load()
TASKS: tuple[str, ...] = tuple(task.name for task in TASK_INFO)  # in display order
TASK_TITLES: dict[str, str] = {task.name: task.title for task in TASK_INFO}
TASK_SHORT: dict[str, str] = {task.name: task.short for task in TASK_INFO}
REFERENCE_METHODS: dict[str, tuple[str, ...]] = {task.name: task.reference_methods for task in TASK_INFO}
FLOPS_UNITS: dict[str, tuple[str, float]] = {task.name: task.flops_unit for task in TASK_INFO}
# (benchmark, method) pairs scored by ``triptych demo`` and ``score_sample --runs demo``, task by task
DEMO_RUNS: tuple[tuple[str, str], ...] = tuple(run for task in TASK_INFO for run in task.demo_runs)
