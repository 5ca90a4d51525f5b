"""Training-set checks of id_collect (near-duplicates by perceptual hash, evaluation identities refused)
and the curation sections of the dataset card, on the sample portraits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from conftest import REPO
from triptych.errors import TriptychError

PORTRAITS = REPO / "datasets/samples/portraits"


def _run(module: str, *argv) -> None:
    import importlib

    importlib.import_module(f"triptych.pipelines.{module}").main([str(a) for a in argv])


def test_a_resized_copy_is_dropped_as_a_near_duplicate(tmp_path: Path) -> None:
    root = tmp_path / "portraits"
    shutil.copytree(PORTRAITS, root)
    with Image.open(root / "scarletthead_woman/scarlett_0.jpg") as image:  # 1024 px -> 700 px, re-encoded
        image.resize((700, 700), Image.Resampling.BICUBIC).save(root / "scarletthead_woman/scarlett_9.jpg", quality=80)
    _run("id_collect", "--root", root, "--out", tmp_path / "id")
    doc = json.loads((tmp_path / "id/id_collect.json").read_text())
    records = {r["path"]: r for r in doc["records"]}
    copy = records["scarletthead_woman/scarlett_9.jpg"]
    assert copy["status"] == "dropped" and copy["dropped_reason"].startswith(
        "near-duplicate of scarletthead_woman/scarlett_0.jpg (pHash distance ")
    assert doc["stages"][-1]["near_duplicates"] == 1
    # the sample's own photos are at least 12 bits apart: none of them is dropped as a duplicate
    assert all("near-duplicate" not in (r["dropped_reason"] or "") for p, r in records.items() if p != copy["path"])


def test_an_identity_of_the_evaluation_protocol_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "portraits"
    shutil.copytree(PORTRAITS / "newton_man", root / "albert_einstein_man")
    with pytest.raises(TriptychError, match="celeb-25id-40prompt") as info:
        _run("id_collect", "--root", root, "--out", tmp_path / "id")
    assert "albert_einstein (Albert Einstein)" in info.value.message and "remove their folders" in info.value.fix


def test_card_lists_licences_sizes_and_tagged_captions(tmp_path: Path) -> None:
    out, card = tmp_path / "id", tmp_path / "card.md"
    _run("id_collect", "--root", PORTRAITS, "--out", out)
    for stage in ("id_detect", "id_verify", "id_crop_mask", "id_caption", "id_tag"):
        _run(stage, "--out", out)
    _run("id_card", "--out", out, "--table", tmp_path / "t.parquet", "--card", card, "--export", tmp_path / "train")
    text = card.read_text()
    assert "| id_detect | `dlib_shape_predictor_5` |" in text and "public domain" in text
    import pyarrow.parquet as pq

    kept = pq.read_table(tmp_path / "t.parquet").to_pandas().query("status == 'kept'")
    shorts = [min(Image.open(PORTRAITS / path).size) for path in kept["path"]]
    longest = [max(b[2] - b[0], b[3] - b[1]) for b in kept["face_box"]]
    rows = [(0, 256), (256, 512), (512, 768), (768, 1024), (1024, 1536), (1536, 2048), (2048, 10 ** 9)]
    for lo, hi in rows:
        label = f">= {lo}" if hi == 10 ** 9 else f"{lo}-{hi - 1}"
        n, m = sum(lo <= v < hi for v in shorts), sum(lo <= v < hi for v in longest)
        assert f"| {label} | {n} | {m} |" in text
    assert "| newton_man/newton_0.jpg | a photo of a man | a photo of a man img |" in text
    assert "Near-duplicates dropped" in text and "celeb-25id-40prompt" in text

    # the train-ready export: crop, mask of the crop's size, tagged caption, one metadata line per kept image
    lines = [json.loads(line) for line in (tmp_path / "train/metadata.jsonl").read_text().splitlines()]
    assert [m["source"] for m in lines] == list(kept["path"])
    assert {m["identity"]: m["identity_id"] for m in lines} == {"newton": 0, "scarletthead": 1}
    for meta, (_, row) in zip(lines, kept.iterrows()):
        with Image.open(tmp_path / "train" / meta["image"]) as crop, Image.open(tmp_path / "train" / meta["mask"]) as mask:
            side = row["crop_box"][2] - row["crop_box"][0]
            assert crop.size == mask.size == (side, side) and mask.mode == "L"
        caption = (tmp_path / "train" / meta["caption"]).read_text().strip()
        assert caption == row["tagged_caption"] and f"{meta['class_word']} img" in caption
