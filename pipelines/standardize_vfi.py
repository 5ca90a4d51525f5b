"""DVC stage ``standardize_vfi``: a frame-interpolation test set -> its triplet list and sha256 manifest.

The user's folder is read in one of the layouts of ``triptych.pipelines.vfi_layouts`` (the AMT @ 70f988f
benchmark scripts' layouts, docs/protocols/frame_interpolation.md; ``video`` cuts the embedded sample's triplets), and
every frame it uses is hashed into a manifest. Outputs, under ``--out`` (``<slug>`` = the name with ``/``
replaced by ``-``): ``<slug>.manifest.json`` and ``<slug>.triplets.json``, the listing that a real
benchmark of ``benchmarks/specs/vfi.yaml`` loads (its ``root`` is stored relative to ``--out`` unless
given as an absolute path, so the listing does not depend on the working directory).

Subset mode (``--subset 1``): triplets whose frames are missing are left out instead of refusing the set (6
Vimeo90K triplets to debug a loader, Xiph with its first frames only). The listing then records
``subset: {count, of, unit, skipped, notes}`` (``of`` = the triplets listed; null where the layout lists
none, e.g. the x8 sets), and a benchmark scores it only with ``score --subset``, never paired with published
rows. x8 videos with fewer than 9 frames are skipped in any mode, as AMT's loader skips them, with a note;
a set that lost one is recorded as a subset too.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

from triptych.errors import InputError, TriptychError
from triptych.manifests import build_manifest, write_manifest
from triptych.pipelines.stage_io import parse_stage_args, run_stage, timed, write_json
from triptych.pipelines.vfi_layouts import LAYOUTS, Found, LayoutOptions


def slug(name: str) -> str:
    """File stem of a benchmark's outputs: ``snu-film/easy`` -> ``snu-film-easy``."""
    return name.replace("/", "-")


def _centers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(c) for c in text.split(",") if c.strip())
    except ValueError as exc:
        raise TriptychError(f"--centers {text!r}: not a list of integers", fix="e.g. 1,6,11") from exc


def _stored_root(root: Path, out: Path) -> str:
    return root.as_posix() if root.is_absolute() else Path(os.path.relpath(root.resolve(), out.resolve())).as_posix()


def subset_record(found: Found) -> dict[str, object] | None:
    """The listing's ``subset`` entry: None for the complete set the layout lists."""
    if not found.is_subset:
        return None
    listed = len(found.triplets) + len(found.skipped) if not found.notes else None
    return {"count": len(found.triplets), "of": listed, "unit": "triplets", "skipped": found.skipped,
            "notes": found.notes}


def standardize(name: str, layout: str, root: Path, options: LayoutOptions, out: Path) -> Found:
    """Read ``root`` in ``layout``, check it, and write the manifest and the triplet listing."""
    found = LAYOUTS[layout](root, options)
    triplets = found.triplets
    if not triplets:
        raise InputError(f"{root}: no triplets found (layout {layout}{', subset mode' if options.subset else ''}; "
                         f"{len(found.skipped)} listed triplet(s) miss frames)", fix="check the list file and --layout")
    repeated = [s for s, n in Counter(str(t["sample_id"]) for t in triplets).items() if n > 1]
    if repeated:
        raise InputError(f"{root}: sample id {repeated[0]!r} occurs more than once (layout {layout})",
                         fix="remove the repeated lines from the list file")
    files = sorted({str(t[k]) for t in triplets for k in ("frame0", "gt", "frame1")})
    manifest = build_manifest(name, root, files, {"triplets": len(triplets)})
    write_manifest(manifest, out / f"{slug(name)}.manifest.json")
    write_json(out / f"{slug(name)}.triplets.json",
               {"name": name, "layout": layout, "root": _stored_root(root, out),
                "manifest": f"{slug(name)}.manifest.json", "manifest_sha256": manifest.sha256,
                "subset": subset_record(found), "triplets": triplets})
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m triptych.pipelines.standardize_vfi", description=__doc__)
    parser.add_argument("--name", required=True, help="benchmark name, e.g. vimeo90k/test or snu-film/easy")
    parser.add_argument("--layout", choices=tuple(LAYOUTS), default="video")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--video", default="", help="layout video: frames folder under --root")
    parser.add_argument("--centers", default="", help="layout video: comma-separated centre frame indices")
    parser.add_argument("--list", default="", help="list file under --root: vimeo90k (default tri_testlist.txt), "
                                                   "snu-film (test-<level>.txt)")
    parser.add_argument("--subset", type=int, default=0, help="1: leave out the listed triplets whose frames are "
                                                               "missing; the listing records the subset")
    parser.add_argument("--out", type=Path, default=Path("datasets/build/vfi"))
    parser.add_argument("--timing", type=Path, default=None)
    args = parse_stage_args(parser, argv)
    options = LayoutOptions(args.list, args.video, _centers(args.centers), bool(args.subset))
    with timed("standardize_vfi", args.timing) as timing:
        found = standardize(args.name, args.layout, args.root, options, args.out)
        timing.items = timing.computed = len(found.triplets)
    for note in found.notes:
        print(f"note: {note}")
    subset = subset_record(found)
    print(f"{args.name}: {len(found.triplets)} triplets"
          + (f" (subset {subset['count']}/{subset['of'] or '?'}: score it with --subset)" if subset else ""))


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
