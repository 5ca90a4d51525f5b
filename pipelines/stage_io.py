"""Machinery every DVC stage script shares: error reporting, atomic JSON, per-image caches, timing, progress.

docs/conventions.md (DVC): each stage is a small script whose defaults point at the embedded sample, whose
parameters come from ``params.yaml`` (passed on the command line by ``dvc.yaml``), and which does nothing
new when run again. Per-image work is cached by the image's content sha256 (``ImageCache``), in a folder
that ``dvc.yaml`` declares ``persist: true`` so an interrupted stage resumes where it stopped instead of
redoing finished images. Long stages show progress (``triptych.progress``: on a terminal, ``--progress``,
``--quiet``); Ctrl-C prints what was saved and the command that resumes (``dvc repro <stage>`` under DVC).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib
import json
import math
import os
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from triptych.atomic import atomic_write_text
from triptych.executors import ray_map
from triptych.errors import TriptychError
from triptych.progress import interrupted_line, sample_progress, set_command, set_mode


def run_stage(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> int:
    """Run a stage's ``main``; a ``TriptychError`` prints ``error:`` / ``fix:`` on stderr and exits 2,
    as the ``triptych`` CLI does; Ctrl-C exits 130 (the stage printed what it saved)."""
    try:
        main(argv)
    except TriptychError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def parse_stage_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args`` with the progress options ``--progress`` / ``--quiet`` added and applied; the
    stage's command line (``parser.prog`` and its arguments) is what an interruption says resumes it."""
    parser.add_argument("--progress", action="store_true",
                        help="show progress even when stderr is not a terminal: one line per item")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    args = parser.parse_args(argv)
    set_mode(args.progress, args.quiet)
    set_command(sys.argv[1:] if argv is None else [str(a) for a in argv], program=parser.prog)
    return args


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


def write_json(path: str | Path, document: Any) -> Path:
    """Canonical JSON (sorted keys), written atomically: equal inputs give byte-identical files, so DVC
    sees an unchanged output as unchanged. inf is written as ``"inf"``, NaN as null."""
    text = json.dumps(_jsonable(document), indent=1, sort_keys=True, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def read_json(path: str | Path, produced_by: str | None = None) -> Any:
    """Read a stage's JSON output; a missing file names the stage that makes it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        fix = f"run the stage that writes it: dvc repro {produced_by}" if produced_by else "check the path"
        raise TriptychError(f"{path}: not found", fix=fix) from exc
    except json.JSONDecodeError as exc:
        raise TriptychError(f"{path}: corrupt JSON ({exc})", fix="delete it and rerun the stage") from exc


def digest(*parts: Any) -> str:
    """sha256 of the canonical JSON of ``parts``: a stable key for parameters and cache entries."""
    canonical = json.dumps(_jsonable(list(parts)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# The heavy models this process has loaded, "<loader>(<arguments>)" -> times (issue 18: once per worker process).
MODEL_LOADS: Counter[str] = Counter()


def once_per_process(loader: Callable[..., Any]) -> Callable[..., Any]:
    """Keep what ``loader`` returns for the life of the process (each Ray worker or pool process keeps its
    own), never loading a model once per image; every real load is counted in ``MODEL_LOADS``, which the
    stage's timing file reports (``model_loads``)."""
    @functools.lru_cache(maxsize=2)
    @functools.wraps(loader)
    def load(*args: Any) -> Any:
        MODEL_LOADS[f"{loader.__name__}{args!r}"] += 1
        return loader(*args)
    return load


def importable(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as an attribute of its module's import name. A stage run as ``python -m
    triptych.pipelines.<stage>`` (as DVC runs it) defines its functions in ``__main__``, which a Ray worker
    cannot import: they, and the per-process model caches they use, are taken from the module imported
    under its package name instead."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if fn.__module__ != "__main__" or spec is None:
        return fn
    return getattr(importlib.import_module(spec.name), fn.__name__)


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, int, dict[str, int]]:
    """``fn(*args)`` with the process that ran it and the model loads that process has made so far."""
    return fn(*args), os.getpid(), dict(MODEL_LOADS)


class ImageCache:
    """One JSON file per finished item, keyed by the image's content sha256 and what the result depends on.

    ``salt`` holds everything besides the image that changes the result (the stage, its version, the
    backend and the parameters that enter the computation; thresholds applied afterwards stay out of it),
    so a cached value is exactly what recomputing would give. Each entry is written atomically as soon as
    it is computed: a killed stage keeps what it finished, and rerunning it computes only the rest.
    """

    def __init__(self, folder: str | Path, salt: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)  # a declared DVC output, even when nothing is computed
        self.salt = digest(salt)[:16]
        self.stage = str(salt.get("stage", self.folder.name))
        self.hits = 0
        self.misses = 0
        self.loads: dict[int, dict[str, int]] = {}  # process id -> its model loads, as last reported

    def _path(self, image_sha256: str, extra: Any) -> Path:
        key = digest(image_sha256, extra)[:32] if extra is not None else image_sha256
        return self.folder / self.salt / key[:2] / f"{key}.json"

    def compute_all(self, jobs: list[tuple[str, Any, Callable[..., Any], tuple[Any, ...]]], executor: str = "local",
                    workers: int = 1, address: str | None = None, unit: str = "images") -> list[Any]:
        """The value of every job (image sha256, extra, module-level function, its arguments), in order:
        cached values are read; the others are computed in this process or as Ray tasks, and each is
        written as soon as it arrives, so an interrupted stage keeps what it finished. The progress display
        counts jobs (``unit``) and names the current one by its first argument's file name (the stages pass
        the image path) or its image sha256."""
        values: list[Any] = [None] * len(jobs)
        missing = []
        for index, (sha, extra, _, _) in enumerate(jobs):
            found = self._read(self._path(sha, extra))
            if found is None:
                missing.append(index)
            else:
                values[index] = found[0]
                self.hits += 1
        calls = [(importable(jobs[i][2]) if executor == "ray" else jobs[i][2], jobs[i][3]) for i in missing]
        results = ray_map(_call, calls, workers, address) if executor == "ray" else enumerate(_call(*c) for c in calls)
        before = self.misses
        try:
            with sample_progress(self.stage, len(jobs), len(jobs) - len(missing), unit) as advance:
                for position, (value, pid, loads) in results:
                    sha, extra, _, args = jobs[missing[position]]
                    self.loads[pid] = loads
                    values[missing[position]] = self._write(sha, extra, value)
                    advance(args[0].name if args and isinstance(args[0], Path) else sha[:12])
        except KeyboardInterrupt:
            done = len(jobs) - len(missing) + self.misses - before
            print(interrupted_line(f"{done} of {len(jobs)} {unit} done, each saved in {self.folder}"),
                  file=sys.stderr, flush=True)
            raise
        return values

    def model_loads(self) -> dict[str, int]:
        """The heavy-model loads of this stage run: the processes that loaded a model (this one included), all
        their loads, and the most loads of one model in one process (1 when every model is loaded once per
        worker; a model loaded per image would show the number of images that worker computed)."""
        processes = {**self.loads, os.getpid(): dict(MODEL_LOADS)}
        loaded = [counts for counts in processes.values() if counts]
        return {"processes": len(loaded), "loads": sum(sum(c.values()) for c in loaded),
                "most_of_one_model_in_one_process": max((max(c.values()) for c in loaded), default=0)}

    def _read(self, path: Path) -> tuple[Any] | None:
        if path.is_file():
            try:
                return (json.loads(path.read_text(encoding="utf-8"))["value"],)
            except (json.JSONDecodeError, KeyError):
                return None  # a damaged entry is recomputed
        return None

    def _write(self, image_sha256: str, extra: Any, value: Any) -> Any:
        value = _jsonable(value)
        write_json(self._path(image_sha256, extra), {"image_sha256": image_sha256, "extra": extra, "value": value})
        self.misses += 1
        return value

    def get_or_compute(self, image_sha256: str, compute: Callable[[], Any], extra: Any = None) -> Any:
        found = self._read(self._path(image_sha256, extra))
        if found is not None:
            self.hits += 1
            return found[0]
        return self._write(image_sha256, extra, compute())


@dataclass
class Timing:
    """Wall time of one stage run and how many items it handled, computed or took from its cache."""

    stage: str
    items: int = 0
    computed: int = 0
    cached: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def count(self, cache: ImageCache) -> None:
        """Take the computed and cached items and the model loads from the stage's cache."""
        self.computed, self.cached = cache.misses, cache.hits
        self.extra["model_loads"] = cache.model_loads()

    def document(self) -> dict[str, Any]:
        per_item = self.seconds / self.computed if self.computed else None
        return {"stage": self.stage, "items": self.items, "computed": self.computed, "cached": self.cached,
                "seconds": round(self.seconds, 4),
                "seconds_per_computed_item": None if per_item is None else round(per_item, 4), **self.extra}


@contextmanager
def timed(stage: str, out: str | Path | None) -> Iterator[Timing]:
    """Time the block; write the ``Timing`` as a DVC metrics file (``cache: false``, never a dependency of
    another stage, so its changing numbers cannot make anything rerun)."""
    timing = Timing(stage)
    start = time.perf_counter()
    yield timing
    timing.seconds = time.perf_counter() - start
    if out is not None:
        write_json(out, timing.document())


def choose_backend(stage: str, backend: str, heavy: str) -> str:
    """``light`` (offline), or the stage's heavy backend, named or as ``heavy`` (issue 8: every stage has
    a heavy backend, the published model, and a light one that runs offline). Anything else is named."""
    if backend == "light":
        return "light"
    if backend in ("heavy", heavy):
        return heavy
    raise TriptychError(f"{stage}: unknown backend {backend!r}", fix=f"use one of: light, {heavy} (or heavy)")
