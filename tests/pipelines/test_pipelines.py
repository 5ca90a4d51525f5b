"""The DVC pipeline (dvc.yaml, params.yaml) with real DVC, and its stages' decisions on real inputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from conftest import REPO
from triptych.errors import TriptychError

# What the pipeline's stages read: its definition, the sample, and every file or folder named as a dep.
PIPELINE_FILES = ("dvc.yaml", "params.yaml", ".dvcignore")
PIPELINE_DIRS = ("datasets/samples", "datasets/splits", "datasets/manifests", "pipelines", "triptych", "metrics",
                 "benchmarks", "baselines", "leaderboard")
PORTRAITS = REPO / "datasets/samples/portraits"


def _dvc(repo: Path, *args: str) -> str:
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", ""), "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([str(Path(bindir) / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def _ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


def _set_params(repo: Path, **sections: dict) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in sections.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture()
def pipeline_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "clone"
    repo.mkdir()
    for name in PIPELINE_FILES:
        shutil.copy2(REPO / name, repo / name)
    for name in PIPELINE_DIRS:
        shutil.copytree(REPO / name, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _dvc(repo, "init", "-q")
    _dvc(repo, "config", "core.analytics", "false")
    return repo


def test_repro_runs_offline_is_idempotent_and_reruns_only_downstream(pipeline_repo: Path) -> None:
    """dvc repro on the sample: table and card are right; a second repro runs nothing; a changed caption
    template reruns id_caption and the stages below it only. Scoring is cut to one fast run (the demo's
    four take minutes on 2 cores); everything else runs with its default parameters."""
    repo = pipeline_repo
    _set_params(repo, score_sample={"runs": "sample-triplets:linear_blend"})
    first = _dvc(repo, "repro")
    assert {"standardize_vos", "standardize_vfi", "id_card", "score_sample"} <= _ran(first)

    table = pq.read_table(repo / "datasets/build/id/id_dataset.parquet").to_pandas().set_index("path")
    assert len(table) == 8
    small = ["newton_man/newton_1.jpg", "newton_man/newton_3.jpg"]  # 280 and 301 px: params.yaml says so
    assert (table.loc[small, "dropped_stage"] == "id_collect").all()
    kept = table[table.status == "kept"]
    assert len(kept) == 6 and kept["mask_rle"].notna().all() and kept["crop_box"].notna().all()
    assert set(kept["class_word"]) == {"man", "woman"}
    assert all(list(span) == [4, 5] for span in kept["token_span"])  # "a photo of a man": token 4
    card = (repo / "datasets/cards/id-sample.md").read_text()
    assert "| id_collect | 6 |" in card and "short side N < N | 2 |" in card and "sqrt(n - 1)" in card
    assert (repo / "datasets/cards/id-sample.png").read_bytes().startswith(b"\x89PNG")
    vos = json.loads((repo / "datasets/build/vos/sample-tennis-e2fgvi.json").read_text())
    assert vos["groups"] == {"tennis": 24}
    triplets = json.loads((repo / "datasets/build/vfi/sample-triplets.triplets.json").read_text())
    assert [t["sample_id"] for t in triplets["triplets"]] == ["tennis/00001", "tennis/00006", "tennis/00011",
                                                               "tennis/00016", "tennis/00021"]
    rows = json.loads((repo / "datasets/build/leaderboard.json").read_text())["rows"]
    assert any(r["source"] == "reproduced" and r["method"] == "linear_blend" for r in rows)
    # the results are DVC metrics and plots: dvc metrics show / plots show read them
    metrics = json.loads(_dvc(repo, "metrics", "show", "--json"))
    blend = {r["metric"]: r["value"] for r in rows if r["source"] == "reproduced"}
    assert metrics[""]["data"]["datasets/build/metrics/sample-triplets/linear_blend.json"]["data"] == blend
    assert json.loads((repo / "datasets/build/scored.json").read_text())["runs"][0]["metrics"] == [
        {"metric": "psnr", "variant": "amt", "version": 1, "n": 5},
        {"metric": "ssim", "variant": "matlab3d", "version": 1, "n": 5}]
    plots = json.loads(_dvc(repo, "plots", "show", "--json"))
    assert "datasets/build/samples.csv" in plots["data"]

    second = _dvc(repo, "repro")
    assert not _ran(second) and "Data and pipelines are up to date" in second

    _set_params(repo, id_caption={"template": "a portrait of a {class_word}"})
    assert "id_caption" in _dvc(repo, "status") and "id_crop_mask" not in _dvc(repo, "status")
    third = _dvc(repo, "repro")
    assert _ran(third) == {"id_caption", "id_tag", "id_card"}
    table = pq.read_table(repo / "datasets/build/id/id_dataset.parquet").to_pandas()
    assert set(table.loc[table.status == "kept", "caption"]) == {"a portrait of a man", "a portrait of a woman"}


def test_standardizing_a_second_split_keeps_the_first(pipeline_repo: Path) -> None:
    """The standardize_vos output folder is persist: a repro for another split (name) adds its folders
    beside the first split's, whose files still verify against their manifest."""
    from triptych.manifests import read_manifest, verify_manifest

    repo = pipeline_repo
    assert "standardize_vos" in _ran(_dvc(repo, "repro", "standardize_vos"))
    first = read_manifest(repo / "datasets/build/vos/sample-tennis-e2fgvi.json")
    _set_params(repo, standardize_vos={"name": "tennis-again", "variants": "e2fgvi"})
    assert "standardize_vos" in _ran(_dvc(repo, "repro", "standardize_vos"))
    verify_manifest(first, repo / "datasets/build/vos/sample-tennis/e2fgvi")
    assert (repo / "datasets/build/vos/sample-tennis/propainter/test.json").is_file()
    assert read_manifest(repo / "datasets/build/vos/tennis-again-e2fgvi.json").groups == {"tennis": 24}


def _run(module: str, *argv: str) -> None:
    import importlib

    importlib.import_module(f"triptych.pipelines.{module}").main([str(a) for a in argv])


def test_verify_drops_a_foreign_face(tmp_path: Path) -> None:
    """A scarletthead photo copied into newton's folder is dropped by id_verify, newton's own photos kept.

    The thesis' factor 8 cannot fire in a small group: over n images a z-score cannot exceed sqrt(n - 1).
    Collect and detect are loosened so that newton's group holds his 4 photos plus the foreign one
    (n = 5, so |z| <= 2); a single outlier among near-identical faces sits near that bound (about -1.99
    here), while newton's photos have z > 0, so k = 1.8 separates them.
    """
    root = tmp_path / "portraits"
    shutil.copytree(PORTRAITS, root)
    shutil.copy2(root / "scarletthead_woman/scarlett_2.jpg", root / "newton_man/zz_foreign.jpg")
    out = tmp_path / "id"
    _run("id_collect", "--root", root, "--out", out, "--min-short-side", 200)
    _run("id_detect", "--out", out, "--min-face-size", 100)
    _run("id_verify", "--out", out, "--deviation-factor", 1.8)
    records = {r["path"]: r for r in json.loads((out / "id_verify.json").read_text())["records"]}
    foreign = records["newton_man/zz_foreign.jpg"]
    assert (foreign["status"], foreign["dropped_stage"]) == ("dropped", "id_verify")
    newton = [r for p, r in records.items() if p.startswith("newton_man/newton_")]
    assert len(newton) == 4 and all(r["status"] == "kept" for r in newton)
    groups = json.loads((out / "id_verify.json").read_text())["stages"][-1]["groups"]
    assert groups["newton"]["n"] == 5 and groups["newton"]["max_possible_z"] == pytest.approx(2.0)

    # Resumable and idempotent: a rerun takes every detection and embedding from the cache.
    _run("id_detect", "--out", out, "--min-face-size", 100, "--timing", tmp_path / "t.json")
    assert json.loads((tmp_path / "t.json").read_text())["computed"] == 0


def test_heavy_backend_without_its_weights_names_what_to_fetch(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIPTYCH_OFFLINE", "1")
    out = tmp_path / "id"
    _run("id_collect", "--root", PORTRAITS, "--out", out)
    with pytest.raises(TriptychError, match="retinaface_resnet50") as info:
        _run("id_detect", "--out", out, "--backend", "heavy", "--backbone", "resnet50")
    assert "Resnet50_Final.pth" in info.value.message and "triptych weights import retinaface_resnet50" in info.value.fix
    with pytest.raises(TriptychError, match="unknown backend 'dlib'") as info:
        _run("id_detect", "--out", out, "--backend", "dlib")
    assert "light, retinaface (or heavy)" in info.value.fix


@pytest.mark.parametrize("caption, group_word, expected", [
    ("a man and his dog on a beach", "man", ("man", (1, 2), "a man")),
    ("two women talking, one wearing a hat", "woman", ("woman", (1, 2), "two women talking")),
    ("a woman and a man sitting on a bench", "man", ("man", (4, 5), "a man sitting on a bench")),
    ("a dog on a beach", "man", None),
])
def test_tag_light_backend_on_real_caption_forms(caption: str, group_word: str, expected: tuple | None) -> None:
    from triptych.pipelines.id_tag import tag_caption

    tag = tag_caption(caption, group_word)
    assert (None if tag is None else (tag.class_word, tag.token_span, tag.sub_caption)) == expected
    if tag is not None:
        assert caption[slice(*tag.char_span)].lower() in (tag.class_word, "women", "men")


def test_tag_majority_class_word() -> None:
    from triptych.pipelines.id_tag import majority_word

    assert majority_word(["a woman smiling", "two women talking", "a man and a woman"], "girl") == "woman"


def _fake_davis(root: Path) -> None:
    """DAVIS-2017 480p layout: JPEGImages/480p/<video>/%05d.jpg, a mask set <video>/%05d.png (palette)."""
    rng = np.random.default_rng(0)
    for video in ("bear", "camel"):
        frames, masks = root / "JPEGImages/480p" / video, root / "masks" / video
        frames.mkdir(parents=True)
        masks.mkdir(parents=True)
        for t in range(2):
            Image.fromarray(rng.integers(0, 255, (48, 86, 3), dtype=np.uint8)).save(frames / f"{t:05d}.jpg")
            mask = Image.fromarray((rng.random((48, 86)) > 0.97).astype(np.uint8) * 2, mode="P")
            mask.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
            mask.save(masks / f"{t:05d}.png")


def test_standardize_vos_fake_davis(tmp_path: Path) -> None:
    from triptych.benchmarks.vos import process_frame, process_mask

    raw, out = tmp_path / "DAVIS", tmp_path / "out"
    _fake_davis(raw)
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"bear": 2, "camel": 3, "dog": 2}))
    args = ["--name", "davis-mini", "--frames", f"{raw}/JPEGImages/480p/{{video}}", "--masks", f"{raw}/masks/{{video}}",
            "--split-list", split, "--out", out, "--width", 32, "--height", 24]
    with pytest.raises(TriptychError, match="missing.*dog"):
        _run("standardize_vos", *args)
    _run("standardize_vos", *args, "--allow-missing", 1)
    report = json.loads((out / "davis-mini-report.json").read_text())
    assert report["missing"] == ["dog"] and report["extra"] == []
    assert report["frame_count_mismatch"] == {"camel": {"expected": 3, "found": 2}}
    for video in ("bear", "camel"):
        for t in range(2):
            expected = process_mask(raw / "masks" / video / f"{t:05d}.png", (32, 24), 4) * 255
            written = np.asarray(Image.open(out / f"davis-mini/e2fgvi/masks/{video}/{t:05d}.png"))
            np.testing.assert_array_equal(written, expected)
            frame = np.asarray(Image.open(out / f"davis-mini/e2fgvi/frames/{video}/{t:05d}.png"))
            np.testing.assert_array_equal(frame, process_frame(raw / "JPEGImages/480p" / video / f"{t:05d}.jpg", (32, 24)))
    manifest = json.loads((out / "davis-mini-propainter.json").read_text())
    assert manifest["groups"] == {"bear": 2, "camel": 2} and len(manifest["entries"]) == 8


def test_standardize_vfi_vimeo_list_skips_short_lines(tmp_path: Path) -> None:
    root = tmp_path / "vimeo"
    for name in ("00001/0001", "00001/0002"):
        for i in (1, 2, 3):
            (root / "sequences" / name).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (i, i, i)).save(root / "sequences" / name / f"im{i}.png")
    (root / "tri_testlist.txt").write_text("00001/0001\n\n \r\n00001/0002\n")
    _run("standardize_vfi", "--name", "vimeo-mini", "--layout", "vimeo90k", "--root", root, "--out", tmp_path / "o")
    doc = json.loads((tmp_path / "o/vimeo-mini.triplets.json").read_text())
    assert [t["sample_id"] for t in doc["triplets"]] == ["00001/0001/im2", "00001/0002/im2"]


def test_ray_executor_gives_the_tables_of_the_local_executor(tmp_path: Path) -> None:
    """--executor ray runs the per-image work (detect, embed, GrabCut) as Ray tasks; the stage tables
    equal those of the local executor, record for record."""
    pytest.importorskip("ray")
    tables = {}
    for executor in ("local", "ray"):
        out = tmp_path / executor
        _run("id_collect", "--root", PORTRAITS, "--out", out, "--min-short-side", 200)
        for stage in ("id_detect", "id_verify", "id_crop_mask"):
            extra = ("--min-face-size", 100) if stage == "id_detect" else ()
            _run(stage, "--out", out, "--executor", executor, "--workers", 2, *extra)
        tables[executor] = [json.loads((out / f"{stage}.json").read_text())["records"]
                            for stage in ("id_detect", "id_verify", "id_crop_mask")]
    assert tables["ray"] == tables["local"]
    assert sum(r["status"] == "kept" for r in tables["ray"][-1]) >= 6
