"""``triptych reproduce TABLE``: the plan on a fresh clone (nothing fetched, no data), and a real run on a
tiny case (rule weights imported into a private TRIPTYCH_HOME, a standardized 379-triplet UCF101 layout).

Expected values come from the published tables (../shared/reported/thesis_tables.csv), the weights
registry and the runs' own run.json, never from the code under test.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

import vfi_fake_layouts as fake
from vfi_fake_layouts import adobe240_x8_test_frames, rule_amt_s_checkpoint
from triptych.pipelines.standardize_vfi import main as standardize_vfi
from triptych.results import list_runs
from triptych.weights import get_spec


@pytest.fixture()
def fresh(monkeypatch, tmp_path):
    """A fresh clone's state: an empty weights cache, an empty data root."""
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    (tmp_path / "data").mkdir()
    return tmp_path


def _published(fixtures_dir, table: str) -> list[dict[str, str]]:
    with open(fixtures_dir.parent / "reported/thesis_tables.csv", newline="") as handle:
        return [r for r in csv.DictReader(handle) if r["table"] == table]


def _missing_lines(out: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("missing ("))
    end = next(i for i, line in enumerate(lines) if line.startswith("not reproducible"))
    return [line.strip() for line in lines[start + 1:end]]


def test_dry_run_of_table_4_1_on_a_fresh_clone_lists_every_row_and_what_is_missing(fresh, run_cli, fixtures_dir):
    code, out, err = run_cli("reproduce", "4.1", "--dry-run", "--data-root", fresh / "data")
    assert code == 0, err
    published = _published(fixtures_dir, "4.1")
    benchmarks = sorted({(r["benchmark"], r["split"]) for r in published if r["benchmark"] != "any"})
    assert len(benchmarks) == 8
    for label, method, weights in (("AMT-S", "amt-s", "amt_s"), ("AMT-L", "amt-l", "amt_l"), ("AMT-G", "amt-g", "amt_g")):
        for benchmark, split in benchmarks:
            listing = "xiph" if benchmark == "xiph" else f"{benchmark}-{split}"
            assert (f"{label} ({method}) on {benchmark}/{split}, variant amt [missing: weights {weights}, data "
                    f"{benchmark}/{split} ({fresh / 'data'}/build/vfi/{listing}.triplets.json)]") in out
        for row in (r for r in published if r["method"] == label and r["metric"] in ("psnr", "ssim")):
            variant = {"psnr": "amt", "ssim": "matlab3d"}[row["metric"]]
            assert (f"{row['benchmark']}/{row['split']}  {row['metric']}:{variant}  published "
                    f"{float(row['value']):g} {row['unit']}".rstrip()) in out
        assert f"{label} ({method}) parameters and FLOPs, counted from the architecture [ready]" in out
    quality = [r for r in published if r["method"] in ("AMT-S", "AMT-L", "AMT-G") and r["metric"] in ("psnr", "ssim")]
    figures = [r for r in published if r["method"].startswith("AMT") and r["metric"] in ("params", "flops")]
    assert out.startswith(f"table 4.1: {len(quality) + len(figures)} published row(s) triptych can reproduce in "
                          f"{3 * 8 + 3} step(s); {len(published) - len(quality) - len(figures)} it cannot")

    missing = _missing_lines(out)
    assert len(missing) == 3 + 8  # one line per piece, each piece once
    for name in ("amt_s", "amt_l", "amt_g"):
        spec = get_spec(name)
        assert (f"weights {name}: download {spec.urls[0]}, then: triptych weights import {name} {spec.filename}  "
                f"(online: triptych weights fetch {name})") in missing
    vimeo = next(line for line in missing if line.startswith("data vimeo90k/test"))
    assert "dvc exp run -S standardize_vfi.name=vimeo90k/test -S standardize_vfi.layout=vimeo90k" in vimeo
    assert "AMT-S: runtime depends on the hardware (RTX 3090, mean of 1000 runs at 1280x720)" in out
    assert "RIFE: RIFE has no registered method" in out


def test_dry_run_of_table_3_1_plans_e2fgvi_on_davis_and_youtube_vos(fresh, run_cli, fixtures_dir):
    code, out, err = run_cli("reproduce", "3.1", "--dry-run", "--data-root", fresh / "data")
    assert code == 0, err
    for benchmark, split in (("davis", "test-50"), ("youtube-vos", "test")):
        assert (f"E2FGVI (e2fgvi) on {benchmark}, variant e2fgvi [missing: weights e2fgvi, weights i3d_rgb_imagenet, "
                f"data {benchmark}") in out
        assert (f"triptych score --benchmark {benchmark} --benchmark-variant e2fgvi --method e2fgvi --metric "
                "psnr:e2fgvi --metric ssim:win65 --metric vfid:e2fgvi") in out
        rows = {r["metric"]: r for r in _published(fixtures_dir, "3.1")
                if (r["method"], r["benchmark"], r["split"]) == ("E2FGVI", benchmark, split)}
        assert f"{benchmark}/{split}  psnr:e2fgvi  published {float(rows['psnr']['value']):g} dB" in out
        assert f"{benchmark}/{split} ewarp" in out.split("not reproducible")[1]  # FlowNet2 E_warp: not registered
    missing = _missing_lines(out)
    spec = get_spec("e2fgvi")
    assert (f"weights e2fgvi: download {spec.urls[0]}, then: triptych weights import e2fgvi E2FGVI-CVPR22.pth  "
            "(online: triptych weights fetch e2fgvi)") in missing
    davis = next(line for line in missing if line.startswith("data davis"))
    assert "build/vos/davis-test-e2fgvi.json" in davis and "standardize_vos.name=davis-test" in davis
    assert "ewarp:flownet2 is not a registered metric variant" in out
    assert "E2FGVI (e2fgvi) parameters and FLOPs, counted from the architecture [ready]" in out


def test_dry_runs_of_tables_4_2_and_5_4_name_the_gopro_checkpoint_and_the_reference_photos(fresh, run_cli):
    code, out, err = run_cli("reproduce", "4.2", "--dry-run", "--data-root", fresh / "data")
    assert code == 0, err
    for benchmark in ("gopro/x8-test", "adobe240/x8-test"):
        assert f"AMT-S (amt-s-gopro) on {benchmark}, variant amt [missing: weights amt_s_gopro, data {benchmark}" in out
    assert "weights amt_s_gopro: download https://huggingface.co/lalala125/AMT/resolve/main/gopro_amt-s.pth" in out
    code, out, err = run_cli("reproduce", "5.4", "--dry-run", "--data-root", fresh / "data")
    assert code == 0, err
    refs = fresh / "data/refs/celeb-25id-40prompt"
    assert (f"PhotoMaker (photomaker-v1) on celeb-25id-40prompt, variant multi-ref [missing: weights sdxl_base_1_0, "
            "weights photomaker_v1") in out and f"--refs {refs}" in out
    assert f"references celeb-25id-40prompt ({refs}): your own photos of the 25 protocol identities" in out
    assert "personalization_time depends on the hardware" in out and "triptych generate --method photomaker-v1" in out


def test_unknown_table_or_method_is_an_error(fresh, run_cli):
    code, out, err = run_cli("reproduce", "5.5", "--dry-run", "--data-root", fresh / "data")
    assert code == 2 and out == "" and "table '5.5'" in err and "3.1, 4.1, 4.2, 5.4" in err
    code, out, err = run_cli("reproduce", "4.1", "--method", "e2fgvi", "--dry-run", "--data-root", fresh / "data")
    assert code == 2 and out == "" and "reproduces no row of table 4.1" in err and "amt-s" in err


def test_a_run_on_a_tiny_case_scores_what_is_present_and_prints_published_vs_reproduced(fresh, run_cli,
                                                                                        fixtures_dir):
    """Rule weights imported as the registry's amt_s file and 2 Vimeo90K triplets (a subset, scored with
    --subset as the user asked): that step runs, the others are skipped for their missing data, and every
    published row of the run stands beside its reproduced value; a subset never pairs, and says so."""
    data, results = fresh / "data", fresh / "results"
    code, _, err = run_cli("weights", "import", "amt_s", rule_amt_s_checkpoint(fresh / "amt-s.pth", 0))
    assert code == 0, err
    root = fake.make_vimeo90k(fresh / "vimeo_triplet", ["00001/0001", "00001/0002"])
    rng = np.random.default_rng(0)
    for png in root.rglob("*.png"):  # textured 128x128 frames (AMT-S gives NaN below 128 px)
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(png)
    standardize_vfi(["--name", "vimeo90k/test", "--layout", "vimeo90k", "--root", str(root),
                     "--out", str(data / "build/vfi")])

    args = ("reproduce", "4.1", "--method", "amt-s", "--data-root", data, "--out", results, "--device", "cpu",
            "--subset")
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert "step 2: AMT-S (amt-s) on vimeo90k/test, variant amt [ready]" in out
    assert "--method amt-s --metric psnr:amt --metric ssim:matlab3d --subset" in out
    assert "step 3: skipped, missing data ucf101/dvf-test" in out
    (run,) = list_runs(results)
    assert run["status"] == "complete" and run["benchmark"] == "vimeo90k" and run["request"]["device"] == "cpu"
    assert run["data"]["subset"]["count"] == 2
    reproduced = {m["metric"]: float(m["aggregate"]["value"]) for m in run["metrics"]}
    published = {r["metric"]: r for r in _published(fixtures_dir, "4.1")
                 if (r["method"], r["benchmark"]) == ("AMT-S", "vimeo90k")}
    table = [line.split("\t") for line in out.split("published vs reproduced:\n")[1].splitlines()[1:]]
    got = {(r[2], r[3]): r for r in table}
    for metric, variant in (("psnr", "amt"), ("ssim", "matlab3d")):
        row = got[("vimeo90k/test", f"{metric}:{variant}")]
        assert float(row[5]) == pytest.approx(float(published[metric]["value"]), rel=1e-6)
        assert float(row[6]) == pytest.approx(reproduced[metric], rel=1e-5)
        assert float(row[7]) == pytest.approx(reproduced[metric] - float(published[metric]["value"]), rel=1e-4)
        assert row[9].startswith("unpaired: subset 2/3782"), row
    params = got[("any/1280x720", "params")]
    assert params[4] == "M" and float(params[5]) == 3.0 and float(params[6]) == pytest.approx(2.990543, abs=1e-5)
    flops = got[("any/1280x720", "flops")]
    assert float(flops[5]) == 0.12 and round(float(flops[6]), 2) == 0.12 and "MACs" in flops[9]

    code, out, err = run_cli(*args)  # the same command again reuses the complete run
    assert code == 0, err
    assert len(list_runs(results)) == 1 and f"step 2: reused complete run {results / run['run_id']}" in out


def test_a_full_split_run_pairs_and_gets_its_verdict(fresh, run_cli, fixtures_dir):
    """Table 4.2 on a tiny Adobe240 x8 set (the x8 sets publish no count, so one 9-frame set is the full
    split), the GoPro checkpoint a rule-built file imported as the registry's amt_s_gopro: the run pairs, and
    the verdict is the metric's tolerance applied to the difference."""
    from triptych.registry import registry

    data, results = fresh / "data", fresh / "results"
    code, _, err = run_cli("weights", "import", "amt_s_gopro", rule_amt_s_checkpoint(fresh / "gopro_amt-s.pth", 0))
    assert code == 0, err
    standardize_vfi(["--name", "adobe240/x8-test", "--layout", "adobe240",
                     "--root", str(adobe240_x8_test_frames(fresh / "test_frames")), "--out", str(data / "build/vfi")])
    code, out, err = run_cli("reproduce", "4.2", "--data-root", data, "--out", results)
    assert code == 0, err
    assert "step 1: skipped, missing data gopro/x8-test" in out
    (run,) = list_runs(results)
    assert run["benchmark"] == "adobe240" and not run["data"]["subset"]
    reproduced = {m["metric"]: float(m["aggregate"]["value"]) for m in run["metrics"]}
    published = {r["metric"]: float(r["value"]) for r in _published(fixtures_dir, "4.2")
                 if (r["method"], r["benchmark"]) == ("AMT-S", "adobe240")}
    table = [line.split("\t") for line in out.split("published vs reproduced:\n")[1].splitlines()[1:]]
    assert len(table) == 2
    for row in table:
        metric = row[3].split(":")[0]
        difference = reproduced[metric] - published[metric]
        tolerance = registry().metric(metric).gate_tolerance
        assert (row[0], row[1], row[2]) == ("4.2", "AMT-S", "adobe240/x8-test")
        assert float(row[7]) == pytest.approx(difference, rel=1e-4) and float(row[8]) == tolerance
        assert row[9] == ("within tolerance" if abs(difference) <= tolerance else "OUTSIDE tolerance")
