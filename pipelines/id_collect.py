"""DVC stage ``id_collect``: one folder per identity -> the first table of the ID dataset.

protocols.md section 3, step 1: ~100 images per name; drop images whose short side is under 512 px
(``--min-short-side``). Folders follow the portrait-set layout ``<root>/<name>_<classword>/`` (read by
``triptych.benchmarks.personalization.load_portraits``); the class word of the folder suffix is kept as
``folder_class_word``. Each image's sha256 is computed here: it is the key of every later stage's cache.
Images that ``triptych.media.read_rgb`` refuses (not 8-bit RGB, EXIF-rotated, content not matching the
suffix, corrupt) are dropped with its reason: the later stages read images with it. This stage is not
cached itself: hashing and decoding the file is its whole per-image work.
"""

from __future__ import annotations

from pathlib import Path

from triptych.benchmarks.personalization import load_portraits
from triptych.errors import InputError
from triptych.manifests import sha256_file
from triptych.media import read_rgb
from triptych.pipelines.id_table import Record, Table, drop, save, stage_parser
from triptych.pipelines.stage_io import run_stage, timed

STAGE = "id_collect"


def collect_record(root: Path, identity: str, class_word: str, path: Path, min_short_side: int) -> Record:
    record: Record = {"identity": identity, "folder_class_word": class_word, "path": path.relative_to(root).as_posix(),
                      "sha256": sha256_file(path), "size_bytes": path.stat().st_size, "width": None, "height": None,
                      "status": "kept", "dropped_stage": None, "dropped_reason": None}
    try:  # the one frame reader: what it refuses (mode, bit depth, EXIF rotation, content) is dropped, named
        record["height"], record["width"] = read_rgb(path).shape[:2]
    except InputError as exc:
        drop(record, STAGE, exc.message.removeprefix(f"{path}: "))
        return record
    if min(record["width"], record["height"]) < min_short_side:
        drop(record, STAGE, f"short side {min(record['width'], record['height'])} < {min_short_side}")
    return record


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(STAGE, __doc__)
    parser.add_argument("--root", type=Path, required=True, help="folder of <name>_<classword>/ identity folders")
    parser.add_argument("--min-short-side", type=int, default=512)
    args = parser.parse_args(argv)
    with timed(STAGE, args.timing) as timing:
        portraits = load_portraits(args.root)
        table = Table([], [])
        for identity in sorted(portraits.identities):
            for path in portraits.identities[identity]:
                table.records.append(collect_record(args.root, identity, portraits.class_words[identity], path,
                                                    args.min_short_side))
        table.log(STAGE, "files", {"root": args.root.as_posix(), "min_short_side": args.min_short_side},
                  collected=len(table.records), identities=len(portraits.identities))
        save(table, args.out, STAGE)
        timing.items = timing.computed = len(table.records)
    print(f"{STAGE}: {len(table.kept())} of {len(table.records)} images kept")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
