"""The one results schema of all three tasks: ``RESULTS/<run_id>/samples.parquet`` + ``run.json``.

Rows are tidy (one measurement each; ``conventions.md`` lists the columns). Per-sample rows are first
written as parts under ``parts/`` (atomically, one file per batch) so a killed run keeps what it
finished; ``finish`` merges them into ``samples.parquet``. The schema version is stored in the Parquet
metadata and in ``run.json``, and checked on every read.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import math
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from triptych.atomic import atomic_write, atomic_write_text
from triptych.errors import SchemaError, TriptychError
from triptych.provenance import code_revision, hardware, package_versions
from triptych.registry import LEVELS

SCHEMA_VERSION = "1.0"
SAMPLES_FILE = "samples.parquet"
RUN_FILE = "run.json"
PARTS_DIR = "parts"
LOCK_FILE = ".lock"
EXTRAS_KEY = b"triptych_extras"  # Parquet metadata of a part: its measurements' extras (JSON)

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
    return frame.loc[:, list(COLUMNS)]


def _write_table(frame: pd.DataFrame, path: Path, extras: dict[str, Any] | None = None) -> None:
    table = pa.Table.from_pandas(frame.loc[:, list(COLUMNS)], schema=SCHEMA, preserve_index=False)
    if extras:  # kept in the same file as the rows, so a part never exists without its extras
        table = table.replace_schema_metadata({**SCHEMA.metadata, EXTRAS_KEY: json.dumps(json_safe(extras))})

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
        runs.append(read_run(run_dir))
    return sorted(runs, key=lambda r: r.get("created_utc", ""), reverse=True)


def json_safe(value: Any) -> Any:
    """inf is written as the string "inf" (conventions.md); numpy scalars and arrays (a metric's extras)
    become plain numbers and lists; a NaN in extras is written as the string "nan", never as bare NaN."""
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {(k.item() if isinstance(k, np.generic) else k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def request_key(request: dict[str, Any]) -> str:
    """A stable hash of what a run was asked to do; the same command resumes the same unfinished run."""
    canonical = json.dumps(json_safe(request), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
        """The unfinished run (status running or failed) made by the same request, if no process holds it."""
        root = Path(results)
        if not root.is_dir():
            return None
        for run_dir in sorted(p for p in root.iterdir() if (p / RUN_FILE).is_file()):
            try:
                meta = read_run(run_dir)
            except SchemaError:
                continue
            if meta.get("status") in ("running", "failed") and meta.get("request_key") == key:
                writer = cls(root, run_dir.name, meta)
                if writer._acquire():
                    writer.meta["status"] = "running"
                    writer.meta.setdefault("resumed_utc", []).append(utc_now())
                    writer._write_meta()
                    return writer
        return None

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

    def add_rows(self, rows: Iterable[dict[str, Any]], part: str, extras: dict[str, Any] | None = None) -> None:
        """Write one part; ``extras`` (JSON-safe after ``json_safe``) is stored with it (``part_extras``)."""
        frame = validate_rows(pd.DataFrame(list(rows), columns=list(COLUMNS)), f"{self.run_dir} part {part}")
        _write_table(frame, self.run_dir / PARTS_DIR / f"{part}.parquet", extras)

    def part_extras(self, part: str) -> dict[str, Any]:
        """The extras stored with a part by ``add_rows`` (empty when none were), e.g. after a resume."""
        meta = pq.read_schema(self.run_dir / PARTS_DIR / f"{part}.parquet").metadata or {}
        return json.loads(meta[EXTRAS_KEY]) if EXTRAS_KEY in meta else {}

    def parts(self) -> list[Path]:
        return sorted((self.run_dir / PARTS_DIR).glob("*.parquet"))

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
