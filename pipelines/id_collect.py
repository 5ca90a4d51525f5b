"""DVC stage ``id_collect``: one folder per identity -> the first table of the ID dataset.

docs/protocols/personalization.md step 1: ~100 images per name; drop images whose short side is under 512 px
(``--min-short-side``). Folders follow the portrait-set layout ``<root>/<name>_<classword>/`` (read by
``triptych.benchmarks.portrait_folders.load_portraits``); the class word of the folder suffix is kept as
``folder_class_word``. Each image's sha256 is computed here: it is the key of every later stage's cache.
Images that ``triptych.media.read_rgb`` refuses (not 8-bit RGB, EXIF-rotated, content not matching the
suffix, corrupt) are dropped with its reason: the later stages read images with it. This stage is not
cached itself: hashing and decoding the file is its whole per-image work.

Two checks for a training set (issue 18): identities of the evaluation protocol (the 25 celebrities of
``celeb-25id-40prompt``, matched by ``id_slug`` of the folder's name) are refused with an error, so the
training data cannot leak into the benchmark; and near-duplicates are dropped: each kept image's
perceptual hash (``phash``: the signs of the 8x8 low-frequency DCT block of the 32x32 greyscale image
against its median, as the common pHash) is compared with every earlier kept image's, and an image within
``--duplicate-distance`` bits (Hamming) of one is dropped as its near-duplicate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from triptych.benchmarks.celeb_protocol import id_slug, load_protocol
from triptych.benchmarks.portrait_folders import load_portraits
from triptych.errors import InputError, TriptychError
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
        rgb = read_rgb(path)
    except InputError as exc:
        drop(record, STAGE, exc.message.removeprefix(f"{path}: "))
        return record
    record["height"], record["width"] = rgb.shape[:2]
    record["phash"] = phash(rgb)
    if min(record["width"], record["height"]) < min_short_side:
        drop(record, STAGE, f"short side {min(record['width'], record['height'])} < {min_short_side}")
    return record


def phash(rgb: np.ndarray) -> str:
    """64-bit perceptual hash of an 8-bit RGB image as 16 hex digits: 32x32 greyscale (PIL Lanczos), 2-D
    orthonormal DCT, the 8x8 lowest frequencies compared with their median, row-major, first bit most
    significant."""
    from scipy.fft import dctn

    image = Image.fromarray(rgb).convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    grey = np.asarray(image, dtype=np.float64)
    block = dctn(grey, norm="ortho")[:8, :8]
    bits = (block > np.median(block)).ravel()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def drop_near_duplicates(records: list[Record], max_distance: int) -> int:
    """Drop each kept record whose pHash is within ``max_distance`` bits of an earlier kept one; the count."""
    seen: list[Record] = []
    dropped = 0
    for record in (r for r in records if r["status"] == "kept"):
        value = int(record["phash"], 16)
        twin = next((r for r in seen if bin(value ^ int(r["phash"], 16)).count("1") <= max_distance), None)
        if twin is None:
            seen.append(record)
            continue
        distance = bin(value ^ int(twin["phash"], 16)).count("1")
        drop(record, STAGE, f"near-duplicate of {twin['path']} (pHash distance {distance} <= {max_distance})")
        dropped += 1
    return dropped


def refuse_protocol_identities(identities: list[str]) -> str:
    """The evaluation protocol's name; an identity of it among ``identities`` is an error."""
    protocol = load_protocol()
    reserved = {id_slug(name): name for name in protocol.ids}
    found = [f"{i} ({reserved[id_slug(i)]})" for i in identities if id_slug(i) in reserved]
    if found:
        raise TriptychError(f"identities of the evaluation protocol {protocol.name} in the training set: "
                            f"{', '.join(found)}", fix="remove their folders: a method trained on them would be "
                                                      "evaluated on its own training identities")
    return protocol.name


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(STAGE, __doc__)
    parser.add_argument("--root", type=Path, required=True, help="folder of <name>_<classword>/ identity folders")
    parser.add_argument("--min-short-side", type=int, default=512)
    parser.add_argument("--duplicate-distance", type=int, default=6,
                        help="pHash bits within which images are near-duplicates")
    args = parser.parse_args(argv)
    with timed(STAGE, args.timing) as timing:
        portraits = load_portraits(args.root)
        protocol = refuse_protocol_identities(sorted(portraits.identities))
        table = Table([], [])
        for identity in sorted(portraits.identities):
            for path in portraits.identities[identity]:
                table.records.append(collect_record(args.root, identity, portraits.class_words[identity], path,
                                                    args.min_short_side))
        duplicates = drop_near_duplicates(table.records, args.duplicate_distance)
        table.log(STAGE, "files", {"root": args.root.as_posix(), "min_short_side": args.min_short_side,
                                   "duplicate_distance": args.duplicate_distance},
                  collected=len(table.records), identities=len(portraits.identities), near_duplicates=duplicates,
                  protocol_identities_refused=protocol)
        save(table, args.out, STAGE)
        timing.items = timing.computed = len(table.records)
    print(f"{STAGE}: {len(table.kept())} of {len(table.records)} images kept")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
