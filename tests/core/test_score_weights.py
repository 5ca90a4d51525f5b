"""``triptych score --method M --weights FILE``: a registered method on a user's checkpoint.

AMT-S runs on ``sample-triplets`` (5 triplets, 240x432) with the fixture's seeded weights
(``shared/fixtures/vfi/amt_s_random_seed0.safetensors``, sha256 from its expected.json). Each row must
equal the AMT forward run here in the test on the same file, the run JSON must record the file as
user-supplied, and another file must never resume the first file's run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from triptych.baselines.amt import build_amt, load_amt_state
from triptych.errors import InputError, TriptychError
from triptych.media import read_rgb
from triptych.registry import registry
from triptych.results import RUN_FILE, read_run, read_samples
from triptych.scoring import load_benchmark, score
from triptych.weights import load_state_dict, sha256_file

BENCH = "sample-triplets"


@pytest.fixture(scope="module")
def seed0(fixtures_dir: Path, vfi_expected: dict) -> Path:
    fixture = vfi_expected["amt_s_port_fixture"]
    path = fixtures_dir / "vfi" / fixture["weights_file"]
    assert sha256_file(path) == fixture["weights_sha256"]
    return path


@pytest.fixture(scope="module")
def changed(seed0: Path, tmp_path_factory) -> Path:
    """The same weights re-saved with one tensor changed: the bias of the finest update block's flow head
    (its flows, occlusion masks and residual make the output frame) shifted by 0.05."""
    state = load_file(str(seed0))
    state["update4.flow_head.2.bias"] += 0.05
    path = tmp_path_factory.mktemp("weights") / "amt_s_changed.safetensors"
    save_file(state, str(path))
    return path


def reference_rows(weights: Path, count: int) -> dict[tuple[str, str], float]:
    """(sample_id, metric) -> value: AMT-S forward on the file (AMT img2tensor, t = 0.5, scale 1.0, no padding,
    the sample-triplets invocation), measured with the benchmark's metric callables."""
    model = build_amt("S")
    load_amt_state(model, load_state_dict(weights), str(weights))
    model.eval()
    spec = registry().benchmark(BENCH)
    metrics = [registry().metric(name).variant(variant) for name, variant in spec.metrics]
    expected = {}
    for triplet in load_benchmark(BENCH).samples[:count]:
        f0, f1 = (torch.from_numpy(read_rgb(p)).permute(2, 0, 1).float().unsqueeze(0) / 255.0
                  for p in (triplet.frame0, triplet.frame1))
        with torch.no_grad():
            out = model(f0, f1, torch.tensor(0.5).view(1, 1, 1, 1), scale_factor=1.0, eval=True)["imgt_pred"]
        pred, gt = out[0].permute(1, 2, 0).numpy(), read_rgb(triplet.gt)
        for (name, _), variant in zip(spec.metrics, metrics):
            expected[triplet.sample_id, name] = float(variant.load()(pred, gt, **variant.params))
    return expected


def values(run_dir: Path) -> dict[tuple[str, str], float]:
    rows = read_samples(run_dir)
    return {(s, m): float(v) for s, m, v in zip(rows.sample_id, rows.metric, rows.value)}


@pytest.fixture()
def one_thread():
    """Both sides of a bit-for-bit comparison run torch on one intra-op thread (another thread count changes
    the last bits of AMT's convolutions), whatever the tests before this one left set."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_score_runs_the_method_on_the_file_records_it_and_never_resumes_into_another_file(
        seed0, changed, tmp_path, vfi_expected, capsys, one_thread):
    out = tmp_path / "results"
    first = score(BENCH, out, method="amt-s", weights=seed0)
    got = values(first)
    assert got == reference_rows(seed0, 5)  # in process, one thread: the same forward, bit for bit

    run = read_run(first)
    (record,) = [w for w in run["weights"] if w["sha256"] == sha256_file(seed0)]
    assert record == {"name": None, "path": str(seed0.resolve()), "sha256": sha256_file(seed0), "registered": False,
                      "user_supplied": True, "replaces": list(registry().method("amt-s").weights)}
    assert not any(w.get("name") == "amt_s" for w in run["weights"])  # the registry entry it replaces
    assert run["request"]["weights_sha256"] == sha256_file(seed0)

    # a crash after three triplets: the run stays "running" with parts 0-2 (as after kill -9)
    for part in ("part-000003", "part-000004"):
        (first / "parts" / f"{part}.parquet").unlink()
    (first / RUN_FILE).write_text(json.dumps({**run, "status": "running"}))
    kept = {p.name: p.stat().st_mtime_ns for p in (first / "parts").glob("*.parquet")}

    second = score(BENCH, out, method="amt-s", weights=changed, workers=2)  # spawned workers load the file too
    assert second != first and "resuming run" not in capsys.readouterr().err
    assert read_run(second)["request"]["weights_sha256"] == sha256_file(changed) != sha256_file(seed0)
    assert read_run(second)["request_key"] != run["request_key"]
    assert {p.name: p.stat().st_mtime_ns for p in (first / "parts").glob("*.parquet")} == kept
    assert read_run(first)["status"] == "running"
    other = values(second)
    assert all(other[key] != got[key] for key in got)  # the changed bias reached every worker
    tolerances = vfi_expected["suggested_tolerances"]  # another process: its thread count may differ
    tolerance = {"psnr": tolerances["psnr_db_abs"], "ssim": tolerances["ssim_abs"]}
    for (sample_id, metric), value in reference_rows(changed, 1).items():
        assert other[sample_id, metric] == pytest.approx(value, abs=tolerance[metric])

    resumed = score(BENCH, out, method="amt-s", weights=seed0)
    assert resumed == first
    assert f"resuming run {first.name}: 3 part(s) reused, 0 recomputed, 2 not scored yet" in capsys.readouterr().err
    assert values(first) == got and read_run(first)["status"] == "complete"


def test_weights_need_a_method_whose_factory_takes_them(seed0, tmp_path):
    with pytest.raises(TriptychError, match="takes no weights file"):
        score(BENCH, tmp_path, method="linear_blend", weights=seed0)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # refused before a run is opened


def test_a_missing_weights_file_is_named(tmp_path):
    with pytest.raises(InputError, match="no_such.safetensors: no such file"):
        score(BENCH, tmp_path, method="amt-s", weights=tmp_path / "no_such.safetensors")


def test_weights_with_a_prediction_folder_is_refused_through_the_cli(seed0, tmp_path, run_cli):
    code, _, err = run_cli("score", "--benchmark", BENCH, "--pred-dir", tmp_path, "--weights", seed0,
                           "--out", tmp_path / "results")
    assert code == 2 and "--weights" in err and "--pred-dir" in err
    assert not (tmp_path / "results").exists()
