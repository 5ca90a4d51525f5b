"""The results schema: tidy Parquet rows + run JSON, versioned, validated on read, written atomically."""

from __future__ import annotations

import json
import math

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from triptych.errors import SchemaError
from triptych.results import COLUMNS, SCHEMA_VERSION, RunWriter, list_runs, read_run, read_samples


def _row(run_id: str, sample_id: str, value: float) -> dict:
    return {"run_id": run_id, "task": "video_inpainting", "benchmark": "sample-tennis", "split": "test",
            "benchmark_variant": "e2fgvi", "method": "mean_fill", "method_version": "1", "sample_id": sample_id,
            "level": "frame", "metric": "psnr", "metric_variant": "e2fgvi", "metric_version": 1, "value": value,
            "unit": "dB"}


def test_round_trip_keeps_rows_provenance_and_inf(tmp_path):
    writer = RunWriter(tmp_path, "run-a")
    writer.begin({"task": "video_inpainting", "seed": 0})
    writer.add_rows([_row("run-a", "tennis/00000", 21.5)], part="p0")
    writer.add_rows([_row("run-a", "tennis/00001", math.inf)], part="p1")
    samples = writer.finish({"metrics": []})
    assert list(samples.columns) == list(COLUMNS)
    back = read_samples(tmp_path / "run-a")
    assert back["value"].tolist() == [21.5, math.inf]
    assert pq.read_schema(tmp_path / "run-a/samples.parquet").metadata[b"triptych_schema_version"].decode() \
        == SCHEMA_VERSION
    run = read_run(tmp_path / "run-a")
    assert run["status"] == "complete" and run["schema_version"] == SCHEMA_VERSION
    for key in ("created_utc", "finished_utc", "command", "code", "packages", "hardware", "seed"):
        assert key in run, key
    assert "git_revision" in run["code"] and "git_dirty" in run["code"]
    assert "numpy" in run["packages"] and "torch" in run["packages"]
    assert [r["run_id"] for r in list_runs(tmp_path)] == ["run-a"]
    assert not list(tmp_path.rglob("*.tmp")), "temporary files must not survive a write"


def test_nan_is_never_written(tmp_path):
    writer = RunWriter(tmp_path, "run-nan")
    writer.begin({})
    with pytest.raises(SchemaError, match="NaN value for psnr on sample 'x'"):
        writer.add_rows([_row("run-nan", "x", float("nan"))], part="p0")
    assert writer.parts() == []


def test_unknown_schema_version_is_refused(tmp_path):
    frame = pd.DataFrame([_row("r", "s", 1.0)])
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(
        {"triptych_schema_version": "99.0"})
    pq.write_table(table, tmp_path / "samples.parquet")
    with pytest.raises(SchemaError, match="schema version 99.0"):
        read_samples(tmp_path / "samples.parquet")


def test_run_folder_is_never_reused(tmp_path):
    RunWriter(tmp_path, "same").begin({})
    with pytest.raises(Exception, match="already exists"):
        RunWriter(tmp_path, "same").begin({})


def test_runs_cli_lists_and_shows(run_cli, tmp_path):
    writer = RunWriter(tmp_path, "run-b")
    writer.begin({"task": "frame_interpolation", "benchmark": "sample-triplets", "method": "linear_blend"})
    writer.add_rows([_row("run-b", "t/0", 30.0), _row("run-b", "t/1", 32.0)], part="p0")
    writer.finish({"metrics": [{"metric": "psnr", "variant": "e2fgvi"}]})
    code, out, _ = run_cli("runs", "list", "--results", tmp_path)
    assert code == 0 and "run-b" in out and "psnr:e2fgvi" in out
    code, out, _ = run_cli("runs", "show", "run-b", "--results", tmp_path)
    assert code == 0 and "31.0" in out
    code, out, _ = run_cli("runs", "show", "run-b", "--results", tmp_path, "--json")
    assert json.loads(out)["benchmark"] == "sample-triplets"
    code, _, err = run_cli("runs", "show", "nope", "--results", tmp_path)
    assert code == 2 and "runs list" in err


def test_result_row_fills_every_column_from_the_run_metadata(tmp_path):
    """The run's identity columns come from its metadata, the measurement from the call; the row passes the
    schema check and round-trips through a run's parts."""
    from triptych.results import COLUMNS, RUN_COLUMNS, result_row, run_metadata

    meta = run_metadata("frame_interpolation", "vimeo90k", "test", "amt", "amt-s", "1", weights=[], data=None,
                        seed=0)
    assert meta["weights"] == [] and meta["seed"] == 0 and meta["data"] is None
    writer = RunWriter(tmp_path, "r1")
    writer.begin(meta)
    row = result_row(writer.run_id, writer.meta, "clip/1", "frame", "psnr", "amt", 2, 31.5, "dB")
    assert tuple(row) == COLUMNS
    assert [row[c] for c in RUN_COLUMNS] == ["frame_interpolation", "vimeo90k", "test", "amt", "amt-s", "1"]
    assert (row["run_id"], row["sample_id"], row["level"], row["metric"], row["metric_variant"],
            row["metric_version"], row["value"], row["unit"]) == ("r1", "clip/1", "frame", "psnr", "amt", 2, 31.5, "dB")
    writer.add_rows([row], part="part-000000")
    writer.finish({})
    frame = read_samples(tmp_path / "r1" / "samples.parquet")
    assert frame.to_dict("records") == [row]
