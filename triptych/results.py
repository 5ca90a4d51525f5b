"""The one results schema of all three tasks: ``RESULTS/<run_id>/samples.parquet`` + ``run.json``.

Rows are tidy (one measurement each; ``docs/conventions.md`` lists the columns). Per-sample rows are first
written as parts under ``parts/`` (atomically, one file per batch, each with the fingerprint of what
produced it) so a killed run keeps what it finished; ``finish`` merges them into ``samples.parquet``. The
schema version is stored in the Parquet metadata and in ``run.json``, and checked on every read, with the
column types and the uniqueness of (run, sample, metric variant) rows.

Several runs of one request (the same ``request_key``: a rerun after the inputs changed, ``--fresh``) may
share a results folder. ``select_runs`` is the one rule every reader applies (``gate``, ``leaderboard
show|build``, ``runs list``): per request, the newest complete run is current and the others are listed
as superseded by it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import math
import os
import secrets
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from triptych.atomic import atomic_write, atomic_write_text
from triptych.errors import SchemaError, TriptychError
from triptych.json_values import SCHEMA_VERSION, json_safe
from triptych.provenance import code_revision, hardware, package_versions
from triptych.registry import LEVELS

SAMPLES_FILE = "samples.parquet"
RUN_FILE = "run.json"
PARTS_DIR = "parts"
LOCK_FILE = ".lock"
EXTRAS_KEY = b"triptych_extras"  # Parquet metadata of a part: its measurements' extras (JSON)
FINGERPRINT_KEY = b"triptych_fingerprint"  # Parquet metadata of a part: what produced it (triptych.fingerprints)
ROW_KEY = ["run_id", "sample_id", "metric", "metric_variant"]  # one row per key in a run

SCHEMA = pa.schema([
    ("run_id", pa.string()),
    ("task", pa.string()),
    ("benchmark", pa.string()),
    ("split", pa.string()),
    ("benchmark_variant", pa.string()),
    ("method", pa.string()),
    ("method_version", pa.string()),
    ("sample_id", pa.string()),
    ("level", pa.string()),
    ("metric", pa.string()),
    ("metric_variant", pa.string()),
    ("metric_version", pa.int32()),
    ("value", pa.float64()),
    ("unit", pa.string()),
], metadata={"triptych_schema_version": SCHEMA_VERSION})
COLUMNS = tuple(SCHEMA.names)
# the columns that name the run (its task, benchmark and method): every row of a run repeats them
RUN_COLUMNS = ("task", "benchmark", "split", "benchmark_variant", "method", "method_version")


def run_metadata(task: str, benchmark: str, split: str, benchmark_variant: str, method: str,
                 method_version: str | None, **about: Any) -> dict[str, Any]:
    """A run's metadata as every writer passes it to ``RunWriter.begin``: the ``RUN_COLUMNS`` that its rows
    repeat, then what else the writer records (``weights``, ``data``, ``seed``, ...; docs/conventions.md)."""
    return {"task": task, "benchmark": benchmark, "split": split, "benchmark_variant": benchmark_variant,
            "method": method, "method_version": method_version, **about}


def result_row(run_id: str, run: Mapping[str, Any], sample_id: str, level: str, metric: str, metric_variant: str,
               metric_version: int, value: float, unit: str) -> dict[str, Any]:
    """One row of the results schema (``COLUMNS``): the run's id, the ``RUN_COLUMNS`` read from its metadata
    (``run_metadata``, or ``RunWriter.meta``), and one measurement."""
    return {"run_id": run_id, **{column: run[column] for column in RUN_COLUMNS}, "sample_id": sample_id,
            "level": level, "metric": metric, "metric_variant": metric_variant, "metric_version": metric_version,
            "value": value, "unit": unit}


def new_run_id(label: str) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in label)
    return f"{stamp}-{safe}-{secrets.token_hex(3)}"


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def validate_rows(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Check columns, levels and values; NaN is never written (inf is allowed: PSNR of equal frames)."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(f"{where}: missing column(s) {', '.join(missing)}")
    bad_levels = sorted(set(frame["level"]) - set(LEVELS))
    if bad_levels:
        raise SchemaError(f"{where}: unknown level(s) {bad_levels}; allowed {list(LEVELS)}")
    if frame["value"].isna().any():
        first = frame.loc[frame["value"].isna()].iloc[0]
        raise SchemaError(f"{where}: NaN value for {first['metric']} on sample {first['sample_id']!r}",
                          fix="a metric that cannot be computed must raise, not return NaN")
    duplicated = frame.duplicated(subset=ROW_KEY, keep=False)
    if duplicated.any():
        first = frame.loc[duplicated].iloc[0]
        count = int((frame[ROW_KEY] == first[ROW_KEY]).all(axis=1).sum())
        raise SchemaError(f"{where}: {count} rows for run {first['run_id']!r}, sample {first['sample_id']!r}, "
                          f"{first['metric']}:{first['metric_variant']} ({int(duplicated.sum())} duplicated row(s) "
                          "in all); a run holds one row per sample and metric variant",
                          fix="the file was edited or assembled by hand: score the run again (triptych score "
                              "... --fresh)")
    return frame.loc[:, list(COLUMNS)]


def _check_types(schema: pa.Schema, where: str) -> None:
    """Each column of a samples file has the type of ``SCHEMA`` (a ``value`` column of strings is refused)."""
    for expected in SCHEMA:
        index = schema.get_field_index(expected.name)
        if index < 0:
            continue  # reported by validate_rows, with every missing column
        found = schema.field(index).type
        if found != expected.type and not (pa.types.is_integer(found) and pa.types.is_integer(expected.type)):
            raise SchemaError(f"{where}: column {expected.name!r} holds {found} values, the results schema has "
                              f"{expected.type}", fix="the file was not written by triptych score: score the run "
                                                      "again, or write the column as " + str(expected.type))


def _write_table(frame: pd.DataFrame, path: Path, extras: dict[str, Any] | None = None,
                 fingerprint: dict[str, Any] | None = None) -> None:
    table = pa.Table.from_pandas(frame.loc[:, list(COLUMNS)], schema=SCHEMA, preserve_index=False)
    meta = {**({EXTRAS_KEY: json.dumps(json_safe(extras))} if extras else {}),
            **({FINGERPRINT_KEY: json.dumps(json_safe(fingerprint), sort_keys=True)} if fingerprint else {})}
    if meta:  # kept in the same file as the rows, so a part never exists without its extras and fingerprint
        table = table.replace_schema_metadata({**SCHEMA.metadata, **meta})

    def write(tmp: Path) -> None:
        with pa.OSFile(str(tmp), "wb") as sink:  # closed even when the write fails (e.g. a full disk)
            pq.write_table(table, sink)

    atomic_write(path, write)


def read_samples(path: str | Path) -> pd.DataFrame:
    """Read a samples file (or a run folder), checking its schema version."""
    path = Path(path)
    if path.is_dir():
        path = path / SAMPLES_FILE
    if not path.is_file():
        raise SchemaError(f"{path}: no samples file", fix="is this a triptych run folder? see 'triptych runs list'")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise SchemaError(f"{path}: not a readable Parquet file ({exc})") from exc
    meta = table.schema.metadata or {}
    found = meta.get(b"triptych_schema_version", b"").decode()
    if found.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise SchemaError(f"{path}: results schema version {found or 'missing'}, this triptych reads "
                          f"{SCHEMA_VERSION}", fix="re-run the scoring with this version of triptych")
    _check_types(table.schema, str(path))
    return validate_rows(table.to_pandas(), str(path))


def read_run(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise SchemaError(f"{path}: no run JSON", fix="is this a triptych run folder? see 'triptych runs list'")
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}: corrupt run JSON ({exc})") from exc
    if str(run.get("schema_version", "")).split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise SchemaError(f"{path}: results schema version {run.get('schema_version')!r}, this triptych reads "
                          f"{SCHEMA_VERSION}")
    return run


def list_runs(results: str | Path) -> list[dict[str, Any]]:
    """Every readable run under ``results``, newest first; unreadable folders are reported, not skipped."""
    root = Path(results)
    if not root.is_dir():
        raise TriptychError(f"{root}: no results folder", fix="pass --results DIR, or score something first")
    runs = []
    for run_dir in sorted(p for p in root.iterdir() if (p / RUN_FILE).is_file()):
        run = read_run(run_dir)
        if run.get("run_id") != run_dir.name:
            raise SchemaError(f"{run_dir / RUN_FILE}: names run {run.get('run_id')!r} but lies in folder "
                              f"{run_dir.name!r}", fix="a run folder is named by its run id: rename the folder "
                                                       "back, or score the run again")
        runs.append(run)
    return sorted(runs, key=_age, reverse=True)


def _age(run: dict[str, Any]) -> tuple[str, str]:
    return str(run.get("created_utc", "")), str(run.get("run_id", ""))


def run_folder(results: str | Path, run: str) -> Path:
    """The folder of run ``run`` (a run id, any unique prefix of one, or a path to a run folder) inside
    ``results``; an ambiguous prefix is refused naming the runs it matches, and anything that resolves outside
    ``results`` is refused, naming it."""
    root = Path(results).resolve()
    given = Path(run)
    candidate = (given if given.is_absolute() or given.resolve().parent == root else root / given).resolve()
    if not candidate.exists() and given.name == run:  # a run id's unique prefix
        found = sorted(p for p in root.iterdir() if p.name.startswith(run) and (p / RUN_FILE).is_file()) \
            if root.is_dir() else []
        if len(found) > 1:
            raise TriptychError(f"run {run!r} is a prefix of {len(found)} runs in {results}: "
                                f"{', '.join(p.name for p in found)}", fix="give more of the run id")
        candidate = found[0] if found else candidate
    if candidate.parent != root:
        raise TriptychError(f"run {run!r} is not a run of the results folder {results} (it resolves to "
                            f"{candidate})", fix="pass the run id as 'triptych runs list --results DIR' shows it, "
                                                 "with --results naming the folder that holds the run")
    if not (candidate / RUN_FILE).is_file():
        raise TriptychError(f"no run {run!r} in {results}", fix="see 'triptych runs list --results DIR'")
    return candidate


@dataclass(frozen=True)
class RunSelection:
    """The runs of a results folder under the one rule of ``select_runs``."""

    current: list[dict[str, Any]]  # complete runs every reader shows, newest first
    superseded: dict[str, str]  # run id -> the id of the newer complete run of the same request
    runs: list[dict[str, Any]]  # every run, newest first

    def notes(self) -> list[str]:
        """One line per superseded run, for the commands that leave it out."""
        return [f"run {old} is superseded by {new} (the newest complete run of the same request)"
                for old, new in sorted(self.superseded.items())]


def select_runs(runs: list[dict[str, Any]]) -> RunSelection:
    """Per request (``request_key``; a run without one is its own request) the newest complete run is
    current, older complete runs of the request are superseded by it; unfinished runs are never current."""
    newest: dict[str, dict[str, Any]] = {}
    for run in sorted(runs, key=_age, reverse=True):
        if run.get("status") == "complete":
            newest.setdefault(run.get("request_key") or run["run_id"], run)
    current = [r for r in sorted(runs, key=_age, reverse=True) if newest.get(r.get("request_key") or r["run_id"]) is r]
    superseded = {r["run_id"]: newest[key]["run_id"] for r in runs if r.get("status") == "complete"
                  and (key := r.get("request_key") or r["run_id"]) in newest and newest[key] is not r}
    return RunSelection(current, superseded, sorted(runs, key=_age, reverse=True))


def current_runs(results: str | Path) -> RunSelection:
    """``select_runs`` over every run of ``results``."""
    return select_runs(list_runs(results))


def superseded_notes(results: str | Path | None) -> list[str]:
    """The runs of a results folder that the readers leave out as superseded, one line each (none for a
    file, e.g. a committed aggregates JSON, or no folder)."""
    return [f"note: {results}: {line}" for line in current_runs(results).notes()] \
        if results is not None and Path(results).is_dir() else []


def request_key(request: dict[str, Any]) -> str:
    """A stable hash of what a run was asked to do; the same command resumes the same unfinished run."""
    canonical = json.dumps(json_safe(request), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@contextmanager
def folder_lock(results: str | Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the results folder itself (created if need be) for the block: the
    moment a process finds or creates its run, so two processes never both create a run of one request."""
    try:
        Path(results).mkdir(parents=True, exist_ok=True)
        fd = os.open(results, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise TriptychError(f"{results}: cannot write into the results folder ({exc.strerror or exc})",
                            fix="pass --out with a folder you can write to") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor drops the flock


def _held(run_dir: Path) -> bool:
    """Whether a process holds the run's lock (it is writing the run)."""
    try:
        handle = open(run_dir / LOCK_FILE, "a+")
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False


def busy_run(results: str | Path, key: str) -> Path | None:
    """The folder of a run of this request that another process is writing now, if any."""
    for meta in runs_of_request(results, key):
        if meta.get("status") == "running" and _held(Path(results) / meta["run_id"]):
            return Path(results) / meta["run_id"]
    return None


def wait_for(run_dir: Path) -> None:
    """Block until no process holds the run's lock (its writer finished, failed or was killed, or discarded
    the run: then there is nothing to wait for)."""
    try:
        handle = open(run_dir / LOCK_FILE, "a+")
    except FileNotFoundError:
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)


def runs_of_request(results: str | Path, key: str) -> list[dict[str, Any]]:
    """The readable runs of one request under ``results``, newest first."""
    root = Path(results)
    found = []
    for run_dir in sorted(p for p in root.iterdir() if (p / RUN_FILE).is_file()) if root.is_dir() else ():
        try:
            meta = read_run(run_dir)
        except SchemaError:
            continue
        if meta.get("request_key") == key and meta.get("run_id") == run_dir.name:
            found.append(meta)
    return sorted(found, key=_age, reverse=True)


@dataclass
class RunWriter:
    """Writes one run: ``begin`` (or ``resume``) -> ``add_rows`` (any number of times) -> ``finish``.

    The writer holds an exclusive ``flock`` on ``<run_dir>/.lock`` while it writes, so two processes never
    write one run; a killed process releases it, and the same command can then resume the run.
    """

    results: Path
    run_id: str
    meta: dict[str, Any] = field(default_factory=dict)
    _lock: Any = None
    leftovers: int = 0  # temporary files of killed writes removed by ``resume``

    @property
    def run_dir(self) -> Path:
        return Path(self.results) / self.run_id

    def _acquire(self) -> bool:
        handle = open(self.run_dir / LOCK_FILE, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lock = handle
        return True

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the descriptor drops the flock
            self._lock = None

    @classmethod
    def resume(cls, results: Path, key: str) -> "RunWriter | None":
        """The newest unfinished run (status running or failed) made by the same request, if no process holds
        it; the temporary files of writes that were killed are removed (``leftovers`` counts them)."""
        for meta in runs_of_request(results, key):
            if meta.get("status") in ("running", "failed"):
                writer = cls(Path(results), meta["run_id"], meta)
                if writer._acquire():
                    writer.leftovers = writer._remove_leftovers()
                    writer.meta["status"] = "running"
                    writer.meta.setdefault("resumed_utc", []).append(utc_now())
                    writer._write_meta()
                    return writer
        return None

    def _remove_leftovers(self) -> int:
        """Delete ``.<name>.<random>.tmp`` files (``atomic_write``) of writes killed before their rename; only
        the holder of the run's lock writes into the run, so none of them is in use."""
        leftovers = [*self.run_dir.glob(".*.tmp"), *(self.run_dir / PARTS_DIR).glob(".*.tmp")]
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)

    def begin(self, meta: dict[str, Any]) -> None:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=False)
        except FileExistsError as exc:
            raise TriptychError(f"{self.run_dir}: run folder already exists", fix="use a new run id") from exc
        except OSError as exc:
            raise TriptychError(f"{self.run_dir}: cannot create run folder ({exc.strerror})",
                                fix="check that the results folder is writable") from exc
        self._acquire()
        self.meta = {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "status": "running",
            "created_utc": utc_now(),
            "command": sys.argv,
            "cwd": os.getcwd(),
            "code": code_revision(),
            "packages": package_versions(),
            "hardware": hardware(),
            **meta,
        }
        self._write_meta()

    def _write_meta(self) -> None:
        atomic_write_text(self.run_dir / RUN_FILE, json.dumps(json_safe(self.meta), indent=2, sort_keys=True))

    def add_rows(self, rows: Iterable[dict[str, Any]], part: str, extras: dict[str, Any] | None = None,
                 fingerprint: dict[str, Any] | None = None) -> None:
        """Write one part; ``extras`` (JSON-safe after ``json_safe``) and the ``fingerprint`` of what produced
        it are stored with it (``part_extras``, ``part_fingerprint``)."""
        frame = validate_rows(pd.DataFrame(list(rows), columns=list(COLUMNS)), f"{self.run_dir} part {part}")
        _write_table(frame, self.run_dir / PARTS_DIR / f"{part}.parquet", extras, fingerprint)

    def _part_meta(self, part: str, key: bytes) -> dict[str, Any] | None:
        meta = pq.read_schema(self.run_dir / PARTS_DIR / f"{part}.parquet").metadata or {}
        return json.loads(meta[key]) if key in meta else None

    def part_extras(self, part: str) -> dict[str, Any]:
        """The extras stored with a part by ``add_rows`` (empty when none were), e.g. after a resume."""
        return self._part_meta(part, EXTRAS_KEY) or {}

    def part_fingerprint(self, part: str) -> dict[str, Any] | None:
        """The fingerprint stored with a part by ``add_rows`` (None for a part written without one)."""
        return self._part_meta(part, FINGERPRINT_KEY)

    def parts(self) -> list[Path]:
        return sorted((self.run_dir / PARTS_DIR).glob("*.parquet"))

    def drop_part(self, part: str) -> None:
        """Remove a part (its inputs changed since it was scored), so that it is scored again."""
        (self.run_dir / PARTS_DIR / f"{part}.parquet").unlink()

    def has_part(self, part: str) -> bool:
        return (self.run_dir / PARTS_DIR / f"{part}.parquet").is_file()

    def fail(self, error: str) -> None:
        """Mark the run failed; its finished parts stay, and the same command resumes it."""
        self.meta["status"] = "failed"
        self.meta["error"] = error
        try:
            self._write_meta()
        except TriptychError:
            pass  # e.g. the disk is full: the run stays "running", which the same command resumes alike
        finally:
            self.release()

    def discard(self) -> None:
        """Remove the run folder of a request that failed before any part was scored (nothing to resume), so a
        failed request never leaves an empty run behind; under the results folder's lock, as runs are found."""
        with folder_lock(self.results):
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.release()

    def finish(self, summary: dict[str, Any] | Callable[[pd.DataFrame], dict[str, Any]]) -> pd.DataFrame:
        """Merge the parts into ``samples.parquet`` and mark the run complete; ``summary`` (a dict, or a
        function of the merged rows) is added to the run JSON."""
        frames = [validate_rows(pq.read_table(p).to_pandas(), str(p)) for p in self.parts()]
        samples = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(COLUMNS))
        _write_table(samples, self.run_dir / SAMPLES_FILE)
        self.meta.update(summary(samples) if callable(summary) else summary)
        self.meta["status"] = "complete"
        self.meta["finished_utc"] = utc_now()
        self.meta.pop("error", None)
        self._write_meta()
        self.release()
        return samples
