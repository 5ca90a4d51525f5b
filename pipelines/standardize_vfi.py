"""DVC stage ``standardize_vfi``: frame-interpolation triplets as a list plus a sha256 manifest.

protocols.md section 2 (AMT @ 70f988f ``benchmarks/vimeo90k.py``): the Vimeo90K triplet test reads
``tri_testlist.txt`` and ``sequences/<a>/<b>/im1..im3.png``, im2 the held-out middle frame; lines of
the list that are blank or one character long are skipped, as the reference does. Layout ``video``
cuts triplets (c-1, c, c+1) out of one folder of frames, as the embedded sample is made (README: 5
triplets from the tennis frames). Each triplet's ``sample_id`` is the ground-truth frame's relative
path without suffix (conventions.md, ``--pred-dir`` layouts).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from triptych.errors import InputError, TriptychError
from triptych.manifests import build_manifest, write_manifest
from triptych.pipelines.stage_io import run_stage, timed, write_json

LAYOUTS = ("video", "vimeo90k")


def read_vimeo_list(path: Path) -> list[str]:
    """``<a>/<b>`` per line, stripped; lines of length <= 1 (blank, a lone CR) are skipped.

    >>> import tempfile, os; p = Path(tempfile.mkdtemp()) / "l.txt"; _ = p.write_text("00001/0001\\n\\n \\n00001/0002\\n")
    >>> read_vimeo_list(p)
    ['00001/0001', '00001/0002']
    """
    if not path.is_file():
        raise InputError(f"{path}: Vimeo90K list not found", fix="point --root at the folder holding tri_testlist.txt")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if len(line.strip()) > 1]


def vimeo_triplets(root: Path, list_name: str) -> list[dict[str, object]]:
    triplets = []
    for name in read_vimeo_list(root / list_name):
        folder = Path("sequences") / name
        files = [folder / f"im{i}.png" for i in (1, 2, 3)]
        missing = [f for f in files if not (root / f).is_file()]
        if missing:
            raise InputError(f"{root / missing[0]}: missing (triplet {name!r} of {list_name})",
                             fix="restore the Vimeo90K sequences folder (sequences/<a>/<b>/im1..im3.png)")
        triplets.append({"sample_id": f"{name}/im2", "frame0": files[0].as_posix(), "gt": files[1].as_posix(),
                         "frame1": files[2].as_posix(), "t": 0.5})
    return triplets


def video_triplets(root: Path, video: str, centers: list[int]) -> list[dict[str, object]]:
    folder = root / video
    frames = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if not frames:
        raise InputError(f"{folder}: no PNG frames", fix="check --root and --video")
    name = Path(video).parent.name or Path(video).name
    triplets = []
    for c in centers:
        if not 1 <= c < len(frames) - 1:
            raise InputError(f"{folder}: triplet centre {c} needs frames {c - 1}..{c + 1}, found {len(frames)}")
        rel = [f.relative_to(root).as_posix() for f in frames[c - 1:c + 2]]
        triplets.append({"sample_id": f"{name}/{frames[c].stem}", "frame0": rel[0], "gt": rel[1], "frame1": rel[2],
                         "t": 0.5})
    return triplets


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m triptych.pipelines.standardize_vfi", description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--layout", choices=LAYOUTS, default="video")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--video", default="", help="layout video: frames folder under --root")
    parser.add_argument("--centers", default="", help="layout video: comma-separated centre frame indices")
    parser.add_argument("--list", default="tri_testlist.txt", help="layout vimeo90k: list file under --root")
    parser.add_argument("--out", type=Path, default=Path("datasets/build/vfi"))
    parser.add_argument("--timing", type=Path, default=None)
    args = parser.parse_args(argv)
    with timed("standardize_vfi", args.timing) as timing:
        if args.layout == "vimeo90k":
            triplets = vimeo_triplets(args.root, args.list)
        else:
            try:
                centers = [int(c) for c in args.centers.split(",") if c.strip()]
            except ValueError as exc:
                raise TriptychError(f"--centers {args.centers!r}: not a list of integers", fix="e.g. 1,6,11") from exc
            triplets = video_triplets(args.root, args.video, centers)
        if not triplets:
            raise InputError(f"{args.root}: no triplets found", fix="check the list file and --layout")
        files = sorted({t[k] for t in triplets for k in ("frame0", "gt", "frame1")})
        manifest = build_manifest(args.name, args.root, files, {"triplets": len(triplets)})
        write_manifest(manifest, args.out / f"{args.name}.manifest.json")
        write_json(args.out / f"{args.name}.triplets.json",
                   {"name": args.name, "layout": args.layout, "root": args.root.as_posix(),
                    "manifest_sha256": manifest.sha256, "triplets": triplets})
        timing.items = timing.computed = len(triplets)
    print(f"{args.name}: {len(triplets)} triplets")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
