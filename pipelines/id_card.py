"""DVC stage ``id_card``: the ID dataset's Parquet table and its Markdown dataset card with a plot.

Issue 8, deliverable 3: one row per collected image (identity, path, sha256, size, face box, landmarks,
verification score, kept or dropped with the stage and reason, crop box, mask RLE, caption, class word,
token span), and a card with the counts after each stage, the drop reasons, the class-word histogram,
the backends and the parameter values. Every output is a pure function of the final stage table, so a
rerun writes byte-identical files (the plot is drawn with Pillow, which stamps no date or version).
Timings live in each stage's metrics file, not here, for the same reason.

``--export DIR`` also writes the train-ready layout of the kept images (docs/id_pipeline.md, "Train-ready
export"): ``DIR/<identity>/<stem>.png`` (the square crop), ``<stem>_mask.png`` (its person mask, 0/255),
``<stem>.txt`` (the tagged caption with the trigger word), and ``DIR/metadata.jsonl``, one line per image
with the identity id, class word, trigger word, files and source sha256.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from triptych.atomic import atomic_write, atomic_write_text
from triptych.pipelines.id_table import STAGES, Table, load_table
from triptych.pipelines.stage_io import run_stage, timed

STAGE = "id_card"
_F64, _I64, _STR = pa.float64(), pa.int64(), pa.string()
SCHEMA = pa.schema([
    ("identity", _STR), ("folder_class_word", _STR), ("path", _STR), ("sha256", _STR), ("size_bytes", _I64),
    ("width", _I64), ("height", _I64), ("status", _STR), ("dropped_stage", _STR), ("dropped_reason", _STR),
    ("faces_detected", _I64), ("face_box", pa.list_(_F64)), ("face_score", _F64),
    ("landmarks", pa.list_(pa.list_(_F64))), ("verification_score", _F64), ("verification_z", _F64),
    ("crop_box", pa.list_(_I64)), ("face_fraction", _F64),
    ("mask_rle", pa.struct([("size", pa.list_(_I64)), ("counts", pa.list_(_I64))])), ("mask_area_px", _I64),
    ("caption", _STR), ("caption_backend", _STR), ("group_class_word", _STR), ("class_word", _STR),
    ("token_span", pa.list_(_I64)), ("char_span", pa.list_(_I64)), ("sub_caption", _STR),
    ("phash", _STR), ("tagged_caption", _STR),
])
SIZE_BINS = (0, 256, 512, 768, 1024, 1536, 2048)


def write_table(table: Table, path: Path) -> Path:
    rows = {field.name: [r.get(field.name) for r in table.records] for field in SCHEMA}
    arrow = pa.table(rows, schema=SCHEMA).replace_schema_metadata({"triptych_id_dataset_version": "1"})
    return atomic_write(path, lambda tmp: pq.write_table(arrow, tmp))


def counts_after_stages(table: Table) -> list[tuple[str, int]]:
    """Images kept after each stage (collected first)."""
    dropped = Counter(r["dropped_stage"] for r in table.records if r["status"] == "dropped")
    left, out = len(table.records), [("collected", len(table.records))]
    for stage in STAGES:
        left -= dropped.get(stage, 0)
        out.append((stage, left))
    return out


def reason_kind(reason: str) -> str:
    """A drop reason with its numbers replaced by N, so equal reasons count together."""
    return re.sub(r"\d+(?:\.\d+)?", "N", reason)


def draw_plot(counts: list[tuple[str, int]], words: Counter, path: Path) -> Path:
    """Two horizontal bar charts (images after each stage; class-word histogram) as a PNG, with Pillow."""
    rows = [("images after each stage", counts), ("class words of kept images", sorted(words.items()))]
    line, width, label_w, bar_w = 22, 640, 170, 380
    height = 20 + sum(30 + line * max(len(items), 1) for _, items in rows)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    y = 10
    for title, items in rows:
        draw.text((10, y), title, fill="black")
        y += 24
        top = max([v for _, v in items] + [1])
        for label, value in items:
            draw.text((10, y + 4), str(label), fill="black")
            draw.rectangle([label_w, y + 3, label_w + round(bar_w * value / top), y + line - 3], fill=(70, 110, 170))
            draw.text((label_w + round(bar_w * value / top) + 6, y + 4), str(value), fill="black")
            y += line
        y += 6
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def histogram(values: list[float], bins: tuple[int, ...] = SIZE_BINS) -> list[tuple[str, int]]:
    """Counts per px range [lo, hi) of ``bins`` (the last range open-ended), every range listed.

    >>> histogram([100, 300, 300, 5000], (0, 256, 512))
    [('0-255', 1), ('256-511', 2), ('>= 512', 1)]
    """
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(bins, bins[1:])] + [f">= {bins[-1]}"]
    counts = Counter(sum(v >= b for b in bins[1:]) for v in values)
    return [(label, counts.get(i, 0)) for i, label in enumerate(labels)]


def curation_lines(table: Table) -> list[str]:
    """The card's curation sections: licences of the models, size histograms, captions before and after
    tagging, near-duplicates and the evaluation-protocol overlap check."""
    from triptych.weights import weights_registry

    kept = [r for r in table.records if r["status"] == "kept"]
    registry = weights_registry()
    lines = ["", "## Models and their licences", "", "| stage | model file | sha256 | licence |", "|---|---|---|---|"]
    for s in table.stages:
        for w in s.get("weights", []):
            licence = registry[w["name"]].licence if w["name"] in registry else "not in the weights registry"
            lines.append(f"| {s['stage']} | `{w['name']}` | {w['sha256'][:12]}... | {licence} |")
    lines += ["", "## Image and face sizes of kept images", "",
              "| px | images (short side) | faces (box's longer side) |", "|---|---|---|"]
    images = histogram([min(r["width"], r["height"]) for r in kept])
    faces = histogram([max(r["face_box"][2] - r["face_box"][0], r["face_box"][3] - r["face_box"][1])
                       for r in kept if r.get("face_box")])
    lines += [f"| {label} | {n} | {m} |" for (label, n), (_, m) in zip(images, faces)]
    lines += ["", "## Captions before and after tagging", "", "| image | caption | tagged caption |", "|---|---|---|"]
    lines += [f"| {r['path']} | {r.get('caption')} | {r.get('tagged_caption')} |" for r in kept[:10]]
    collect = next((s for s in table.stages if s["stage"] == "id_collect"), {})
    lines += ["", "## Near-duplicates and evaluation identities", "",
              f"Near-duplicates dropped (perceptual hash within {collect.get('params', {}).get('duplicate_distance')} "
              f"bits of an earlier kept image): {collect.get('near_duplicates', 0)}. Identities of the evaluation "
              f"protocol {collect.get('protocol_identities_refused')} are refused by `id_collect`: none is in "
              "this dataset."]
    return lines


def card_text(table: Table, counts: list[tuple[str, int]], words: Counter, plot_name: str, parquet: str) -> str:
    kept = [r for r in table.records if r["status"] == "kept"]
    identities = sorted({r["identity"] for r in table.records})
    lines = ["# ID dataset card", "",
             f"{len(kept)} of {len(table.records)} collected images kept, {len({r['identity'] for r in kept})} of "
             f"{len(identities)} identities. Built by the DVC pipeline `id_collect` -> ... -> `id_card` "
             "(docs/protocols/personalization.md); one row per collected image, with the stage and reason of "
             "every drop, "
             f"in `{parquet}`.", "", f"![counts and class words]({plot_name})", "",
             "## Images after each stage", "", "| stage | images |", "|---|---|"]
    lines += [f"| {stage} | {n} |" for stage, n in counts]
    reasons = Counter((r["dropped_stage"], reason_kind(r["dropped_reason"])) for r in table.records if r["status"] == "dropped")
    lines += ["", "## Drop reasons", "", "| stage | reason (numbers as N) | images |", "|---|---|---|"]
    lines += [f"| {stage} | {reason} | {n} |" for (stage, reason), n in sorted(reasons.items(), key=lambda kv: (STAGES.index(kv[0][0]), kv[0][1]))]
    if not reasons:
        lines.append("| - | none | 0 |")
    lines += ["", "## Class words of kept images", "", "| class word | images |", "|---|---|"]
    lines += [f"| {w} | {n} |" for w, n in sorted(words.items())]
    verify = next((s for s in table.stages if s["stage"] == "id_verify"), None)
    if verify is not None:
        k = verify["params"]["deviation_factor"]
        lines += ["", "## Identity verification per group", "",
                  f"Images more than k = {k:g} standard deviations below their group's mean summed similarity are "
                  "dropped. A z-score over n images cannot exceed sqrt(n - 1), so k drops nothing in a group with "
                  "sqrt(n - 1) <= k.", "",
                  "| identity | n | sqrt(n - 1) | k can drop here | dropped | mean score | std |", "|---|---|---|---|---|---|---|"]
        for identity, g in sorted(verify["groups"].items()):
            lines.append(f"| {identity} | {g['n']} | {g['max_possible_z']:.3f} | {'yes' if g['factor_can_drop'] else 'no'} "
                         f"| {g['dropped']} | {g['mean']:.4f} | {g['std']:.4f} |")
    lines += ["", "## Backends and parameters", "", "| stage | backend | parameters | kept after |", "|---|---|---|---|"]
    for s in table.stages:
        params = ", ".join(f"`{k}={json.dumps(v)}`" for k, v in sorted(s["params"].items()))
        lines.append(f"| {s['stage']} | {s['backend']} | {params} | {s['kept']} |")
    lines += curation_lines(table)
    return "\n".join(lines) + "\n"


def export_training_set(table: Table, root: Path, folder: Path) -> int:
    """The train-ready layout of every kept image (see the module docstring); returns the image count."""
    import numpy as np

    from triptych.media import read_rgb
    from triptych.pipelines.id_crop_mask import rle_decode

    tag = next((s for s in table.stages if s["stage"] == "id_tag"), {"params": {}})
    trigger = tag["params"].get("trigger", "img")
    identities = sorted({r["identity"] for r in table.records})
    lines = []
    for record in (r for r in table.records if r["status"] == "kept"):
        stem = Path(record["path"]).stem
        x0, y0, x1, y1 = record["crop_box"]
        base = folder / record["identity"]
        crop = read_rgb(root / record["path"])[y0:y1, x0:x1]
        mask = (rle_decode(record["mask_rle"]) * 255).astype(np.uint8)
        atomic_write(base / f"{stem}.png", lambda tmp, a=crop: Image.fromarray(a).save(tmp, format="PNG"))
        atomic_write(base / f"{stem}_mask.png", lambda tmp, a=mask: Image.fromarray(a).save(tmp, format="PNG"))
        atomic_write_text(base / f"{stem}.txt", record["tagged_caption"] + "\n")
        lines.append(json.dumps({"identity": record["identity"], "identity_id": identities.index(record["identity"]),
                                 "class_word": record["group_class_word"], "trigger": trigger,
                                 "image": f"{record['identity']}/{stem}.png",
                                 "mask": f"{record['identity']}/{stem}_mask.png",
                                 "caption": f"{record['identity']}/{stem}.txt", "source": record["path"],
                                 "source_sha256": record["sha256"]}, sort_keys=True))
    atomic_write_text(folder / "metadata.jsonl", "".join(line + "\n" for line in lines))
    return len(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m triptych.pipelines.id_card", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("datasets/build/id"), help="folder of the stage tables")
    parser.add_argument("--table", type=Path, default=Path("datasets/build/id/id_dataset.parquet"))
    parser.add_argument("--card", type=Path, default=Path("datasets/cards/id-sample.md"))
    parser.add_argument("--timing", type=Path, default=None)
    parser.add_argument("--export", type=Path, default=None,
                        help="write the train-ready layout of the kept images here")
    args = parser.parse_args(argv)
    with timed(STAGE, args.timing) as timing:
        table = load_table(args.out, STAGES[-1])
        write_table(table, args.table)
        counts = counts_after_stages(table)
        words = Counter(r["class_word"] for r in table.records if r["status"] == "kept")
        plot = args.card.with_suffix(".png")
        draw_plot(counts, words, plot)
        parquet = Path(os.path.relpath(args.table, args.card.parent)).as_posix()
        atomic_write_text(args.card, card_text(table, counts, words, plot.name, parquet))
        timing.items = timing.computed = len(table.records)
        if args.export is not None:
            exported = export_training_set(table, Path(table.stages[0]["params"]["root"]), args.export)
            print(f"{STAGE}: {exported} images exported to {args.export}")
    print(f"{STAGE}: {args.table} ({len(table.records)} rows), {args.card}")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
