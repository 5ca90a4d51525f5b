"""The ID-dataset pipeline's running table: one record per collected image, carried from stage to stage.

docs/protocols/personalization.md (thesis 5.2.3) builds the dataset in steps, each of which drops images. Every
image collected keeps its record to the end, with the stage and reason of its drop, so the final table
audits every decision (issue 8, deliverable 3). Each stage reads ``<out>/<previous>.json``, works on
the kept records only, and writes ``<out>/<stage>.json``: ``{"stages": [...], "records": [...]}``, where
``stages`` lists every stage so far with its backend and parameter values (what the dataset card shows).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from triptych.pipelines.stage_io import ImageCache, read_json, write_json

# The stages in order; each reads the table of the one before it.
STAGES = ("id_collect", "id_detect", "id_verify", "id_crop_mask", "id_caption", "id_tag")

Record = dict[str, Any]


class Table:
    """The records and the stage log of one step of the pipeline."""

    def __init__(self, stages: list[dict[str, Any]], records: list[Record]) -> None:
        self.stages = stages
        self.records = records

    def kept(self) -> list[Record]:
        return [r for r in self.records if r["status"] == "kept"]

    def groups(self) -> dict[str, list[Record]]:
        """Kept records per identity, in record order (records are sorted by identity, then path)."""
        out: dict[str, list[Record]] = defaultdict(list)
        for record in self.kept():
            out[record["identity"]].append(record)
        return dict(out)

    def log(self, stage: str, backend: str, params: dict[str, Any], **extra: Any) -> None:
        self.stages.append({"stage": stage, "backend": backend, "params": params,
                            "kept": len(self.kept()), **extra})


def drop(record: Record, stage: str, reason: str) -> None:
    """Mark a record dropped by ``stage`` for ``reason`` (the first drop is the one that counts)."""
    if record["status"] == "kept":
        record["status"] = "dropped"
        record["dropped_stage"] = stage
        record["dropped_reason"] = reason


def table_path(out: Path, stage: str) -> Path:
    return out / f"{stage}.json"


def load_table(out: Path, stage: str) -> Table:
    """The table a stage wrote; a missing one names the stage to run."""
    doc = read_json(table_path(out, stage), produced_by=stage)
    return Table(list(doc["stages"]), list(doc["records"]))


def load_previous(out: Path, stage: str) -> Table:
    return load_table(out, STAGES[STAGES.index(stage) - 1])


def save(table: Table, out: Path, stage: str) -> Path:
    return write_json(table_path(out, stage), {"stages": table.stages, "records": table.records})


def stage_parser(stage: str, doc: str | None) -> argparse.ArgumentParser:
    """The options every per-image stage takes: where the tables live, the backend, the cache, timing."""
    parser = argparse.ArgumentParser(prog=f"python -m triptych.pipelines.{stage}", description=doc)
    parser.add_argument("--out", type=Path, default=Path("datasets/build/id"), help="folder of the stage tables")
    parser.add_argument("--backend", default="light", help="light (offline) or the stage's heavy backend")
    parser.add_argument("--cache", type=Path, default=None, help="per-image cache folder (default <out>/cache/<stage>)")
    parser.add_argument("--timing", type=Path, default=None, help="metrics file for the stage's wall time")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="where the per-image work runs: this process, or Ray (same output)")
    parser.add_argument("--workers", type=int, default=2, help="CPUs of a local Ray instance")
    parser.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: start a local one)")
    return parser


def compute_all(cache: ImageCache, args: argparse.Namespace,
                jobs: list[tuple[str, Any, Callable[..., Any], tuple[Any, ...]]], unit: str = "images") -> list[Any]:
    """A stage's per-image work on the chosen executor, through its cache, with progress; values in job order."""
    return cache.compute_all(jobs, args.executor, args.workers, args.ray_address, unit)


def stage_cache(args: argparse.Namespace, stage: str, version: int, **salt: Any) -> ImageCache:
    folder = args.cache if args.cache is not None else args.out / "cache" / stage
    return ImageCache(folder, {"stage": stage, "version": version, "backend": args.backend, **salt})


def image_path(table: Table, record: Record) -> Path:
    """The source file of a record: the collect stage's root joined with the record's relative path."""
    return Path(table.stages[0]["params"]["root"]) / record["path"]
