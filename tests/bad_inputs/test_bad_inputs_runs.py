"""Bad inputs around runs (docs/bad_inputs.md, "Runs, results folders and the gate"): results files that are
not what ``triptych score`` writes, run ids that lead outside ``--results``, output folders that cannot be
written, and executor options that cannot run. Each goes through the real CLI: exit 2, stdout empty, the
file or value and the fix on stderr."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bad_input_cases import Case
from triptych.results import RUN_FILE, SAMPLES_FILE, read_samples


@functools.lru_cache(maxsize=1)
def _scored() -> Path:
    """One real run of linear_blend on sample-triplets (5 triplets, psnr:amt and ssim:amt), scored once."""
    from triptych.scoring import score

    folder = Path(tempfile.mkdtemp(prefix="triptych-runs-cases-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    score("sample-triplets", folder / "results", method="linear_blend")
    return folder / "results"


def _results(tmp: Path, name: str = "results") -> tuple[Path, Path]:
    """A copy of the scored results folder and its one run folder."""
    copy = tmp / name
    shutil.copytree(_scored(), copy)
    return copy, next(p for p in copy.iterdir() if (p / RUN_FILE).is_file())


def _rewrite_samples(run_dir: Path, change) -> None:
    """Rewrite a run's samples.parquet through ``change(table) -> table`` (what a hand edit does)."""
    table = pq.read_table(run_dir / SAMPLES_FILE)
    pq.write_table(change(table), run_dir / SAMPLES_FILE)


def _value_strings(tmp: Path) -> list:
    results, run = _results(tmp)
    _rewrite_samples(run, lambda t: t.set_column(t.schema.get_field_index("value"), "value",
                                                 pa.array([f"{v:.3f}" for v in t.column("value").to_pylist()])))
    return ["runs", "show", run.name, "--results", results]


def _duplicated_row(tmp: Path) -> list:
    base, _ = _results(tmp, "baseline")
    cand, run = _results(tmp, "candidate")
    rows = read_samples(run)
    extra = rows[(rows.sample_id == "tennis/00006") & (rows.metric == "psnr")].assign(value=99.0)
    frame = pa.concat_tables([pq.read_table(run / SAMPLES_FILE),
                              pa.Table.from_pandas(extra, schema=pq.read_schema(run / SAMPLES_FILE),
                                                   preserve_index=False)])
    _rewrite_samples(run, lambda t: frame)
    return ["gate", "--baseline", base, "--candidate", cand]


def _run_json_names_another_run(tmp: Path) -> list:
    results, run = _results(tmp)
    meta = json.loads((run / RUN_FILE).read_text())
    (run / RUN_FILE).write_text(json.dumps({**meta, "run_id": "../outside"}))
    return ["leaderboard", "show", "--results", results]


def _run_outside_results(tmp: Path) -> list:
    results, _ = _results(tmp)
    other, run = _results(tmp, "other")
    return ["runs", "show", f"../other/{run.name}", "--results", results]


def _absolute_run_outside_results(tmp: Path) -> list:
    results, _ = _results(tmp)
    _, run = _results(tmp, "other")
    return ["runs", "show", run, "--results", results]


def _read_only_folder(tmp: Path) -> Path:
    """An empty folder on a read-only file system (a read-only tmpfs as root, else a folder without write
    permission)."""
    folder = tmp / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
    elif subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)]).returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    return folder


def _site_on_read_only_fs(tmp: Path) -> list:
    results, _ = _results(tmp)
    return ["leaderboard", "build", "--results", results, "--out", _read_only_folder(tmp) / "site"]


def _site_under_a_file(tmp: Path) -> list:
    results, _ = _results(tmp)
    (tmp / "site.txt").write_text("not a folder")
    return ["leaderboard", "build", "--results", results, "--out", tmp / "site.txt/site"]


def _score_into(out: Path, *extra: str) -> list:
    return ["score", "--benchmark", "sample-triplets", "--method", "linear_blend", "--out", out, *extra]


CASES = [
    Case("results-value-strings", _value_strings, ("samples.parquet", "'value'", "string", "double")),
    Case("results-duplicated-row", _duplicated_row, ("samples.parquet", "2 rows", "'tennis/00006'", "psnr:amt",
                                                     "--fresh")),
    Case("run-json-names-another-run", _run_json_names_another_run, ("run.json", "'../outside'", "rename the folder")),
    Case("run-id-outside-results", _run_outside_results, ("'../other/", "is not a run of the results folder",
                                                          "--results")),
    Case("run-folder-outside-results", _absolute_run_outside_results, ("is not a run of the results folder",)),
    Case("site-on-read-only-file-system", _site_on_read_only_fs, ("site", "could not write",
                                                                  "a folder you can write to")),
    Case("site-under-a-file", _site_under_a_file, ("site.txt/site", "could not write", "a folder you can write to")),
    Case("results-folder-under-a-file", lambda t: ((t / "file").write_text("x"), _score_into(t / "file/r"))[1],
         ("file/r", "cannot write into the results folder", "--out")),
    Case("zero-workers", lambda t: _score_into(t / "r", "--workers", "0"), ("--workers 0", "at least 1",
                                                                            "--workers 1")),
    Case("negative-workers", lambda t: _score_into(t / "r", "--workers", "-2"), ("--workers -2", "at least 1")),
    Case("unknown-executor", lambda t: _score_into(t / "r", "--executor", "dask"), ("'dask'", "local, ray")),
]


def _unmount_under(root: Path) -> None:
    for line in Path("/proc/mounts").read_text().splitlines():
        mount_point = line.split()[1]
        if mount_point.startswith(str(root)):
            subprocess.run(["umount", "--lazy", mount_point])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_run_input_gets_a_clear_error(case, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    try:
        result = run_cli(*case.setup(tmp_path))
    finally:
        _unmount_under(tmp_path)
        for folder in tmp_path.glob("read-only"):
            folder.chmod(0o755)
    case.assert_refused(*result)


@pytest.mark.parametrize("workers", ["0", "-2"])
def test_bad_workers_are_refused_before_a_run_folder_exists(workers, tmp_path, run_cli):
    code, _, err = run_cli(*_score_into(tmp_path / "r", "--workers", workers))
    assert code == 2 and f"--workers {workers}" in err
    assert not (tmp_path / "r").exists()
