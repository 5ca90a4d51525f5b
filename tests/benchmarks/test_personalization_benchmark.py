"""The ``celeb-25id-40prompt`` benchmark: init layout, layout check, scoring end to end, sanity baselines,
single-reference seed, leaderboard alignment.

Identity scoring uses the real offline dlib backend on real portraits (``datasets/samples/portraits``, and
``../shared/data/portraits`` where present), with few prompts and images so the module stays short.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from triptych.benchmarks.celeb import EMBEDDINGS
from triptych.benchmarks.celeb_protocol import id_slug, identity_index, load_protocol, load_references, single_reference
from triptych.errors import InputError, TriptychError
from triptych.leaderboard.reported import load_reported
from triptych.leaderboard.sitedata import merge_table
from triptych.leaderboard.table import leaderboard_rows
from triptych.metrics.face_sim import face_similarity
from triptych.metrics.fid import inception_features
from triptych.metrics.kid import kid_from_features
from triptych.registry import registry
from triptych.results import read_run, read_samples
from triptych.scoring import load_benchmark, score
from triptych.vision.face import EmbeddingCache, dlib_backend

from conftest import REPO, SHARED, fill_with_references, rule_inception

SAMPLE = REPO / "datasets/samples/portraits"
BENCH = "celeb-25id-40prompt"
SMALL = {"ids": "found", "prompts": "2", "images_per_prompt": "2"}  # 2 prompts x 2 images per identity
DLIB = ["face_sim:dlib"]


def portrait_sets() -> list[Path]:
    return [SAMPLE] + ([SHARED / "data/portraits"] if (SHARED / "data/portraits").is_dir() else [])


@pytest.fixture(scope="module")
def dlib():
    pytest.importorskip("dlib")
    return dlib_backend()


@pytest.fixture(scope="module")
def cache() -> EmbeddingCache:
    """The benchmark's process-wide cache (keyed by pixels: a hit is exactly a recomputation), so each
    portrait is embedded once in this module; the embeddings themselves are tested in test_face.py."""
    return EMBEDDINGS


@pytest.fixture(scope="module")
def pred_dir(tmp_path_factory) -> tuple[Path, list[dict]]:
    from triptych.cli import main

    out = tmp_path_factory.mktemp("generated")
    assert main(["personalization", "init", "--out", str(out), "--refs", str(SAMPLE), "--ids", "found",
                 "--prompts", "2", "--images-per-prompt", "2"]) == 0
    return out, fill_with_references(out, SAMPLE)


def test_init_without_refs_writes_the_whole_protocol(run_cli, tmp_path):
    code, out, _ = run_cli("personalization", "init", "--out", tmp_path)
    assert code == 0
    protocol = load_protocol()
    with (tmp_path / "prompts.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["path"] for r in rows] == protocol.expected_images()
    assert len(rows) == len(protocol.ids) * len(protocol.prompts) * protocol.images_per_prompt
    by_slug = {id_slug(i): i for i in protocol.ids}
    for row in rows[:: protocol.images_per_prompt]:
        name = by_slug[row["id_slug"]]
        prompt = protocol.prompts[int(row["prompt_index"])]
        assert row["prompt"] == protocol.fill(prompt, protocol.class_words[name])
        assert protocol.placeholder not in row["prompt"] and row["class_word"] in row["prompt"]
        assert (tmp_path / row["path"]).parent.is_dir()
    doc = json.loads((tmp_path / "prompts.json").read_text())
    assert doc["protocol"] == protocol.name
    assert [{k: str(v) for k, v in image.items()} for image in doc["images"]] == rows


def test_init_with_refs_uses_folder_class_words_and_lists_references(pred_dir):
    out, rows = pred_dir
    protocol = load_protocol()
    portraits = load_references(SAMPLE, protocol)
    assert sorted({r["id"] for r in rows}) == sorted(portraits.identities)
    for row in rows:
        suffix = {"newton": "man", "scarletthead": "woman"}[row["id"]]  # newton_man/, scarletthead_woman/
        assert row["class_word"] == portraits.class_words[row["id"]] == suffix
        assert row["prompt"] == protocol.fill(protocol.prompts[int(row["prompt_index"])], row["class_word"])
        expected = [p.relative_to(SAMPLE).as_posix() for p in portraits.identities[row["id"]]]
        assert row["references"].split(";") == expected
    assert sorted({r["prompt_index"] for r in rows}) == ["0", "1"]
    for row in rows:  # the seed rule of triptych generate: base 0 + (i*40 + p)*4 + k, i = 25 + crc32 mod 2**20
        i, p, k = identity_index(protocol, row["id"]), int(row["prompt_index"]), int(row["path"][-len("0.png")])
        assert int(row["seed"]) == (i * 40 + p) * 4 + k and i >= 25


def test_class_words_csv_and_protocol_slugs_name_identities(tmp_path):
    protocol = load_protocol()
    for folder in ("alan_turing", "zed", "newton_man"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / folder / "0.png")
    (tmp_path / "class_words.csv").write_text("id,class_word\nzed,woman\n")
    refs = load_references(tmp_path, protocol)
    assert refs.class_words == {"Alan Turing": protocol.class_words["Alan Turing"], "zed": "woman", "newton": "man"}
    (tmp_path / "class_words.csv").unlink()
    with pytest.raises(InputError, match="no class word for identity folder 'zed'"):
        load_references(tmp_path, protocol)


def test_layout_check_names_every_missing_and_extra_file_before_scoring(pred_dir, tmp_path, run_cli):
    src, rows = pred_dir
    broken = tmp_path / "broken"
    shutil.copytree(src, broken)
    gone = [rows[0]["path"], rows[-1]["path"]]
    for path in gone:
        (broken / path).unlink()
    strays = ["newton/stray.jpg", "bob/0.png"]
    for path in strays:
        (broken / path).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(broken / path)
    outside = broken / "newton/05_a_class_word_wearing_a_blue_hoodie/0.png"  # a protocol image, unselected
    outside.parent.mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(outside)
    results = tmp_path / "results"
    code, _, err = run_cli("score", "--benchmark", BENCH, "--pred-dir", broken, "--refs", SAMPLE, "--out", results,
                           *sum((["--param", f"{k}={v}"] for k, v in SMALL.items()), []), "--metric", DLIB[0])
    assert code != 0
    assert "2 missing" in err and "2 not in the layout" in err
    for path in gone + strays:
        assert path in err
    assert "05_a_class_word_wearing_a_blue_hoodie" not in err.split("error:")[1]  # allowed, only counted
    assert not results.exists()  # nothing was computed or written


def test_leave_one_out_same_identity_above_cross_identity(dlib, cache):
    """Leave-one-out on every portrait set: each photo against the other photos of its identity, and
    against every photo of the other identities."""
    for root in portrait_sets():
        portraits = load_references(root, load_protocol())
        for name, paths in portraits.identities.items():
            others = [p for n, ps in portraits.identities.items() if n != name for p in ps]
            for held_out in paths:
                rest = [p for p in paths if p != held_out]
                cross = face_similarity(held_out, others, dlib, cache=cache)
                if rest:
                    assert face_similarity(held_out, rest, dlib, cache=cache) > cross + 0.05


def test_score_pred_dir_end_to_end_through_the_cli(pred_dir, dlib, cache, run_cli, tmp_path):
    src, rows = pred_dir
    code, out, err = run_cli("score", "--benchmark", BENCH, "--pred-dir", src, "--refs", SAMPLE, "--out", tmp_path,
                             *sum((["--param", f"{k}={v}"] for k, v in SMALL.items()), []), "--metric", DLIB[0])
    assert code == 0, err
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    samples = read_samples(run_dir)
    assert list(samples.sample_id) == [r["path"][: -len(".png")] for r in rows]
    assert set(samples.level) == {"image"} and set(samples.benchmark) == {BENCH} and set(samples.split) == {"test"}
    portraits = load_references(SAMPLE, load_protocol())
    for row, value in zip(rows, samples.value):
        expected = face_similarity(row["source"], portraits.identities[row["id"]], dlib, cache=cache)
        assert value == pytest.approx(expected, abs=1e-12)
    run = read_run(run_dir)
    assert run["benchmark_params"]["refs"] == str(SAMPLE.resolve()) and run["benchmark_params"]["prompts"] == "2"
    assert run["benchmark_extras"]["class_words"] == {"newton": "man", "scarletthead": "woman"}
    assert f"{run['metrics'][0]['aggregate']['value']:.6g}" in out


@pytest.fixture(scope="module")
def baseline_runs(dlib, tmp_path_factory) -> tuple[Path, dict[str, object]]:
    """reference_copy, other_id and blank on every portrait set, one prompt x 2 images per identity."""
    results = tmp_path_factory.mktemp("baselines")
    frames = {}
    for refs in portrait_sets():
        for method in ("reference_copy", "other_id", "blank"):
            run_dir = score(BENCH, results, method=method, metrics=DLIB,
                            params={"refs": str(refs), "ids": "found", "prompts": "1", "images_per_prompt": "2"})
            frames[(refs.name if refs != SAMPLE else "sample", method)] = read_samples(run_dir)
            frames[(refs.name if refs != SAMPLE else "sample", method, "run")] = read_run(run_dir)
    return results, frames


def test_baselines_order_reference_copy_above_other_id_above_blank(baseline_runs):
    _, frames = baseline_runs
    for where in {w for w, *_ in frames}:
        means = {}
        for method in ("reference_copy", "other_id", "blank"):
            samples = frames[(where, method)]
            samples = samples.assign(identity=samples.sample_id.str.split("/").str[0])
            means[method] = samples.groupby("identity").value.mean()
        assert (means["reference_copy"] > means["other_id"] + 0.05).all(), (where, means)
        assert (means["other_id"] > means["blank"]).all() and (means["blank"] == 0.0).all()


def test_faceless_images_are_recorded_in_run_json(baseline_runs):
    """no_face=zero: blank images score 0 and every one is named in run.json; reference copies have faces."""
    _, frames = baseline_runs
    for where in {w for w, *_ in frames}:
        blank, copy = frames[(where, "blank", "run")], frames[(where, "reference_copy", "run")]
        samples = frames[(where, "blank")]
        (metric,) = blank["metrics"]
        assert metric["flagged"] == {"no_face": {"count": len(samples), "sample_ids": sorted(samples.sample_id)}}
        assert "flagged" not in copy["metrics"][0]


def test_faceless_flags_are_complete_across_worker_processes(dlib, tmp_path):
    """The flags travel with each sample's part, so two worker processes give the same run.json list."""
    params = {"refs": str(SAMPLE), "ids": "found", "prompts": "1", "images_per_prompt": "2"}
    run = read_run(score(BENCH, tmp_path, method="blank", metrics=DLIB, params=params, workers=2))
    (metric,) = run["metrics"]
    assert metric["flagged"]["no_face"]["count"] == metric["aggregate"]["n"] == 4
    assert metric["flagged"]["no_face"]["sample_ids"] == sorted(metric["flagged"]["no_face"]["sample_ids"])


def test_generate_then_score_equals_scoring_the_method(dlib, run_cli, tmp_path):
    """One slice string, one seed rule: `triptych generate` + `score --pred-dir` gives the rows of `score --method`."""
    slice_args = {"ids": "found", "prompts": "0,2-3", "images_per_prompt": "2", "seed": "11"}
    out = tmp_path / "generated"
    code, _, err = run_cli("generate", "--method", "reference_copy", "--refs", SAMPLE, "--out", out, "--device", "cpu",
                           "--quiet", *sum(([f"--{k.replace('_', '-')}", v] for k, v in slice_args.items()), []))
    assert code == 0, err
    generation = json.loads((out / ".generation/generation.json").read_text())
    params = {"refs": str(SAMPLE), **slice_args}
    by_method = read_run(score(BENCH, tmp_path / "m", method="reference_copy", metrics=DLIB, params=params))
    from_dir = score(BENCH, tmp_path / "d", pred_dir=out, metrics=DLIB, params=params)
    assert generation["seeds"] == by_method["benchmark_extras"]["seeds"]
    protocol = load_protocol()
    path = protocol.image_path("newton", protocol.prompts[3], 1)
    newton = identity_index(protocol, "newton")
    assert {i["path"]: i["seed"] for i in generation["images"]}[path] == 11 + (newton * 40 + 3) * 4 + 1
    a, b = read_samples(tmp_path / "m" / by_method["run_id"]), read_samples(from_dir)
    assert len(a) == 2 * 3 * 2 and list(a.sample_id) == list(b.sample_id)
    assert list(a.value) == list(b.value)


def test_blank_is_an_error_under_no_face_error(dlib, tmp_path):
    with pytest.raises(TriptychError, match="generated image .*no face found"):
        score(BENCH, tmp_path, method="blank", metrics=DLIB,
              params={"refs": str(SAMPLE), "ids": "found", "prompts": "1", "images_per_prompt": "1", "no_face": "error"})


def test_single_ref_picks_one_reference_by_a_recorded_seed(dlib, tmp_path):
    params = {"refs": str(SAMPLE), "ids": "found", "prompts": "1", "images_per_prompt": "1", "seed": "3"}
    run_dir = score(BENCH, tmp_path, method="reference_copy", benchmark_variant="single-ref", metrics=DLIB,
                    params=params)
    run = read_run(run_dir)
    assert run["benchmark_variant"] == "single-ref" and run["benchmark_params"]["seed"] == 3  # in the variant's type
    portraits = load_references(SAMPLE, load_protocol())
    for name, paths in portraits.identities.items():
        chosen = single_reference(paths, 3, name)
        assert run["benchmark_extras"]["given_references"][id_slug(name)] == [chosen.relative_to(SAMPLE).as_posix()]
    picks = {s: [single_reference(p, s, n) for n, p in portraits.identities.items()] for s in range(8)}
    assert len({tuple(v) for v in picks.values()}) > 1  # the seed matters
    data = load_benchmark(BENCH, "single-ref", params=params)
    assert all(len(s.given) == 1 and len(s.references) == 4 for s in data.samples)  # metrics use all four


def test_unknown_parameters_and_bad_slices_are_named():
    with pytest.raises(TriptychError, match="unknown key.*--param: 'promts' \\(did you mean 'prompts'"):
        load_benchmark(BENCH, params={"refs": str(SAMPLE), "promts": "2"})
    data = load_benchmark(BENCH, params={"refs": str(SAMPLE), "ids": "found", "prompts": "7,2-3", "images_per_prompt": "1"})
    assert sorted({s.prompt_index for s in data.samples}) == [2, 3, 7] and len(data.samples) == 2 * 3
    with pytest.raises(InputError, match="prompts='0'"):
        load_benchmark(BENCH, params={"refs": str(SAMPLE), "ids": "found", "prompts": "0"})
    with pytest.raises(InputError, match="none were given"):
        load_benchmark(BENCH)
    with pytest.raises(InputError, match="no reference folder for 25 identities"):
        load_benchmark(BENCH, params={"refs": str(SAMPLE)})


def test_reproduced_run_lines_up_with_table_5_4(baseline_runs):
    results, _ = baseline_runs
    reported = load_reported()
    t54 = reported[reported.table == "5.4"]
    spec = registry().benchmark(BENCH)
    assert set(t54.benchmark) == {spec.name} and set(t54.split) == {spec.split}
    declared = dict(spec.metrics)
    for metric, variant in zip(t54.metric, t54.metric_variant):
        if variant and metric in registry().metrics:  # every published metric that triptych implements
            assert declared.get(metric) == variant, metric
    rows = leaderboard_rows(results, task="personalization")
    mine = rows[(rows.source == "reproduced") & (rows.benchmark == spec.name)]
    assert set(mine.split) == {spec.split} and set(mine.metric) == {"face_sim"}
    table = merge_table(rows[rows.benchmark == spec.name])
    photomaker = table[(table.method == "PhotoMaker") & (table.metric == "face_sim")]
    assert list(photomaker.reported_table) == ["5.4"] and photomaker.reproduced.isna().all()
    dlib_rows = table[table.metric_variant == "dlib"]
    assert len(dlib_rows) == len(mine) and dlib_rows.reported.isna().all()  # another embedder: never paired
    t55 = reported[reported.table == "5.5"]
    assert set(t55.benchmark) == {"non-celeb-12id-10prompt"} and "non-celeb-12id-10prompt" not in registry().benchmarks


def test_set_metrics_get_one_row_over_all_images(pred_dir, dlib, kid_rule, tmp_path):
    src, rows = pred_dir
    run_dir = score(BENCH, tmp_path, pred_dir=src, metrics=[*DLIB, "kid:rule"], params={"refs": str(SAMPLE), **SMALL})
    samples = read_samples(run_dir)
    set_rows = samples[samples.metric == "kid"]
    assert list(set_rows.sample_id) == ["."] and list(set_rows.level) == ["set"]
    assert len(samples[samples.metric == "face_sim"]) == len(rows)
    real = [p for name in ("newton_man", "scarletthead_woman") for p in sorted((SAMPLE / name).iterdir())]
    features = inception_features(real, rule_inception())
    generated = features[[real.index(r["source"]) for r in rows]]  # each generated PNG holds a reference's pixels
    expected = kid_from_features(features, generated, **kid_rule.params)
    assert float(set_rows.value.iloc[0]) == pytest.approx(expected.value, rel=1e-9)
    summary = {m["metric"]: m["aggregate"] for m in read_run(run_dir)["metrics"]}
    assert summary["kid"]["n"] == 1 and summary["kid"]["reduction"] == "one value over the whole set"
