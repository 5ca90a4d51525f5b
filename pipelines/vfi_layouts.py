"""Folder layouts of the frame-interpolation test sets: a user's folder -> its list of triplets.

Every layout reads the folder exactly as the AMT @ 70f988f benchmark script (and dataset class) for that set
does (docs/protocols/frame_interpolation.md, "Benchmarks") and returns triplets ``{sample_id, frame0, gt,
frame1, t}`` with paths relative to the folder. ``sample_id`` is the ground-truth frame's benchmark-relative
path without suffix (docs/conventions.md, ``--pred-dir`` layouts); ``t`` is the time of the ground truth
between the two inputs, which the interpolator receives. A missing frame or folder is an ``InputError``
naming the path and what the layout expects there, unless subset mode (``LayoutOptions.subset``) was asked
for: then the triplets whose frames are missing are left out and counted (``Found.skipped``), and the set is
recorded as a subset. An x8 video folder with fewer than 9 frames (a GoPro copy keeps only non-empty folders
in git) yields no set, as AMT's loader cuts none from it: it is skipped with a note, and the set is a
subset. Frame preparation (Xiph's resize or crop, the x8 sets' 512x512 centre crop) is the benchmark
variant's and happens when the benchmark is scored (``triptych.benchmarks.vfi``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from triptych.errors import InputError
from triptych.folders import visible_entries
from triptych.media import IMAGE_SUFFIXES

TripletPaths = dict[str, object]

# xiph.py: the eight Netflix clips, first 100 frames each, written by ffmpeg as %03d.png (001..100).
XIPH_CLIPS = ("BoxingPractice", "Crosswalk", "DrivingPOV", "FoodMarket", "FoodMarket2", "RitualDance",
              "SquareAndTimelapse", "Tango")
XIPH_CENTRES = range(2, 99, 2)  # 49 triplets (c-1, c, c+1) per clip
# gopro_datasets.py GoPro_Test_Dataset: the eleven test videos, in the reference's order.
GOPRO_TEST_VIDEOS = ("GOPR0384_11_00", "GOPR0385_11_01", "GOPR0410_11_00", "GOPR0862_11_00", "GOPR0869_11_00",
                     "GOPR0881_11_01", "GOPR0384_11_05", "GOPR0396_11_00", "GOPR0854_11_00", "GOPR0868_11_00",
                     "GOPR0871_11_00")
X8_TARGETS = 7  # interFrames: sets of 9 frames at stride 8, targets 1..7 at t = k / 8


@dataclass(frozen=True)
class LayoutOptions:
    """The stage's per-layout arguments: a list file (vimeo90k, snu-film) or a video and its centres."""

    list_name: str = ""
    video: str = ""
    centers: tuple[int, ...] = ()
    subset: bool = False  # leave out the triplets whose frames are missing instead of refusing the set


@dataclass
class Found:
    """What a layout read: the triplets, the listed ones left out for missing frames (subset mode), and
    notes on videos that yield no triplet (x8 folders with fewer than 9 frames)."""

    triplets: list[TripletPaths] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def is_subset(self) -> bool:
        return bool(self.skipped or self.notes)


def _triplet(sample_id: str, frame0: str, gt: str, frame1: str, t: float = 0.5) -> TripletPaths:
    return {"sample_id": sample_id, "frame0": frame0, "gt": gt, "frame1": frame1, "t": t}


def _require_files(root: Path, rels: list[str], what: str, fix: str) -> None:
    missing = [rel for rel in rels if not (root / rel).is_file()]
    if missing:
        raise InputError(f"{root / missing[0]}: missing ({what}; {len(missing)} file(s) missing)",
                         fix=f"{fix}; or standardize the frames present with --subset 1 (recorded as a subset)")


def _add(found: Found, root: Path, triplet: TripletPaths, what: str, fix: str, options: LayoutOptions) -> None:
    """Keep a listed triplet whose three frames exist; one with a missing frame is an error, or, in subset
    mode, left out and counted."""
    rels = [str(triplet[k]) for k in ("frame0", "gt", "frame1")]
    if options.subset and not all((root / rel).is_file() for rel in rels):
        found.skipped.append(str(triplet["sample_id"]))
        return
    _require_files(root, rels, what, fix)
    found.triplets.append(triplet)


def _require_dir(folder: Path, what: str, fix: str) -> None:
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder ({what})", fix=fix)


def _images(folder: Path) -> list[Path]:
    """The image files of a folder, sorted by name (the references' ``sorted(os.listdir(...))``)."""
    return [p for p in visible_entries(folder) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]


def read_list(path: Path, what: str, fix: str) -> list[str]:
    """Stripped lines of a list file; lines of length <= 1 (blank, a lone CR) are skipped, as
    vimeo90k.py does (``if len(line) <= 1: continue``).

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "l.txt"; _ = p.write_text("00001/0001\\n\\n \\n00001/0002\\n")
    >>> read_list(p, "list", "")
    ['00001/0001', '00001/0002']
    """
    if not path.is_file():
        raise InputError(f"{path}: {what} not found", fix=fix)
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if len(line.strip()) > 1]


def video_triplets(root: Path, options: LayoutOptions) -> Found:
    """Triplets (c-1, c, c+1) cut from one folder of frames, one per centre (the embedded sample)."""
    folder = root / options.video
    frames = [p for p in visible_entries(folder) if p.suffix.lower() == ".png"] if folder.is_dir() else []
    if not frames:
        raise InputError(f"{folder}: no PNG frames", fix="check --root and --video")
    name = Path(options.video).parent.name or Path(options.video).name
    found = Found()
    for c in options.centers:
        if not 1 <= c < len(frames) - 1:
            raise InputError(f"{folder}: triplet centre {c} needs frames {c - 1}..{c + 1}, found {len(frames)}",
                             fix="pick centres between 1 and the frame count - 2")
        rel = [f.relative_to(root).as_posix() for f in frames[c - 1:c + 2]]
        found.triplets.append(_triplet(f"{name}/{frames[c].stem}", *rel))
    return found


def vimeo90k_triplets(root: Path, options: LayoutOptions) -> Found:
    """vimeo90k.py: ``tri_testlist.txt`` names ``<a>/<b>``; frames ``sequences/<a>/<b>/im1..im3.png``."""
    list_name = options.list_name or "tri_testlist.txt"
    names = read_list(root / list_name, "Vimeo90K list",
                      "point --root at vimeo_triplet/ (the folder holding tri_testlist.txt and sequences/)")
    found = Found()
    for name in names:
        files = [f"sequences/{name}/im{i}.png" for i in (1, 2, 3)]
        _add(found, root, _triplet(f"{name}/im2", *files), f"triplet {name!r} of {list_name}",
             "restore the Vimeo90K sequences folder (sequences/<a>/<b>/im1..im3.png)", options)
    return found


def ucf101_triplets(root: Path, options: LayoutOptions) -> Found:
    """ucf101.py: every sub-folder of ``ucf101_interp_ours/`` in ``sorted(os.listdir())`` order (string
    order: 1, 10, 100, 2, ...) holds ``frame_00.png``, ``frame_01_gt.png`` (the truth) and ``frame_02.png``."""
    fix = "point --root at ucf101_interp_ours/ (379 folders of frame_00.png, frame_01_gt.png, frame_02.png)"
    _require_dir(root, "UCF101 DVF test set", fix)
    folders = [p.name for p in visible_entries(root) if p.is_dir()]
    if not folders:
        raise InputError(f"{root}: no triplet folders (UCF101 DVF test set)", fix=fix)
    found = Found()
    for name in folders:
        files = [f"{name}/frame_00.png", f"{name}/frame_01_gt.png", f"{name}/frame_02.png"]
        _add(found, root, _triplet(f"{name}/frame_01_gt", *files), f"UCF101 triplet {name!r}", fix, options)
    return found


def snu_film_triplets(root: Path, options: LayoutOptions) -> Found:
    """snu_film.py: ``test-<level>.txt`` lines hold three space-separated paths (frame0, truth, frame1)
    written for the authors' machine; only their last three components are kept, under ``--root``."""
    if not options.list_name:
        raise InputError(f"{root}: layout snu-film needs its list file",
                         fix="pass --list test-easy.txt (or test-medium / test-hard / test-extreme)")
    fix = ("point --root at the SNU-FILM folder holding test-<level>.txt and the frames at each listed path's "
           "last three components (e.g. GOPRO_test/GOPR0384_11_00/000001.png)")
    found = Found()
    for number, line in enumerate(read_list(root / options.list_name, "SNU-FILM list", fix), 1):
        paths = line.split()
        if len(paths) != 3 or any(len(Path(p).parts) < 3 for p in paths):
            raise InputError(f"{root / options.list_name}: line {number} is not three paths of at least three "
                             f"components: {line!r}", fix="restore the published test-<level>.txt")
        files = [Path(*Path(p).parts[-3:]).as_posix() for p in paths]
        _add(found, root, _triplet(Path(files[1]).with_suffix("").as_posix(), *files),
             f"line {number} of {options.list_name}", fix, options)
    return found


def xiph_triplets(root: Path, options: LayoutOptions) -> Found:
    """xiph.py: ``<clip>/%03d.png`` for the eight clips; triplets (c-1, c, c+1) for c = 2, 4, ..., 98."""
    found = Found()
    for clip in XIPH_CLIPS:
        fix = (f"extract the first 100 frames: ffmpeg -i Netflix_{clip}_4096x2160_60fps_10bit_420.y4m "
               f"-pix_fmt rgb24 -vframes 100 {root / clip}/%03d.png")
        if not options.subset:
            _require_dir(root / clip, f"Xiph clip {clip}", fix)
        for c in XIPH_CENTRES:
            files = [f"{clip}/{i:03d}.png" for i in (c - 1, c, c + 1)]
            _add(found, root, _triplet(f"{clip}/{c:03d}", *files), f"Xiph clip {clip}, triplet centred on frame {c}",
                 fix, options)
    return found


def _x8_sets(root: Path, video: str, found: Found) -> None:
    """One video of an x8 set (gopro_datasets.py / adobe_datasets.py): its frames sorted by name, cut
    into sets of 9 at stride 8 (frames past the last full set are unused); inputs are a set's first and
    last frames, and each of the 7 frames between is a target at t = k / 8. A folder with fewer than 9
    frames (or none: git keeps no empty folder) yields no set, as in the reference loaders: a note says so."""
    folder = root / video
    frames = [p.relative_to(root).as_posix() for p in _images(folder)] if folder.is_dir() else []
    length, stride = X8_TARGETS + 2, X8_TARGETS + 1
    if len(frames) < length:
        state = f"{len(frames)} frame(s)" if folder.is_dir() else "folder missing"
        found.notes.append(f"{folder}: {state}; an x8 set needs at least {length}, so the video yields no "
                           "set (skipped, as AMT's loader cuts none from it)")
        return
    for start in range(0, len(frames) - length + 1, stride):
        first, last = frames[start], frames[start + stride]
        for k in range(1, stride):
            gt = frames[start + k]
            sample_id = Path(gt).relative_to(Path(video).parent).with_suffix("").as_posix()
            found.triplets.append(_triplet(sample_id, first, gt, last, k / stride))


def _x8_found(root: Path, videos: list[str], fix: str) -> Found:
    found = Found()
    for video in videos:
        _x8_sets(root, video, found)
    if not found.triplets:
        raise InputError(f"{root}: no video with at least {X8_TARGETS + 2} frames ({len(found.notes)} skipped: "
                         f"{found.notes[0] if found.notes else ''})", fix=fix)
    return found


def gopro_triplets(root: Path, options: LayoutOptions) -> Found:
    """GoPro_Test_Dataset: ``test/<video>/`` for the eleven fixed test videos; sample ids drop ``test/``."""
    fix = "point --root at GOPRO_Large_all/ (or any folder whose test/ holds the 11 GoPro test videos)"
    _require_dir(root / "test", "GoPro test split", fix)
    return _x8_found(root, [f"test/{video}" for video in GOPRO_TEST_VIDEOS],
                     "restore the GoPro test videos' frames (test/<video>/*.png)")


def adobe240_triplets(root: Path, options: LayoutOptions) -> Found:
    """Adobe240_Dataset: every tenth video folder of ``test_frames/`` starting at the tenth. The reference
    takes ``os.listdir()[9::10]``, whose order is the file system's; triptych sorts the names first, so
    the selection is reproducible (and may differ from the authors' on their file system)."""
    fix = "point --root at Adobe240's test_frames/ (one folder of frames per video)"
    _require_dir(root, "Adobe240 test frames", fix)
    videos = [p.name for p in visible_entries(root) if p.is_dir()][9::10]
    if not videos:
        raise InputError(f"{root}: fewer than 10 video folders, so [9::10] selects none", fix=fix)
    return _x8_found(root, videos, "restore the selected videos' frames (test_frames/<video>/*.png)")


LAYOUTS: dict[str, Callable[[Path, LayoutOptions], Found]] = {
    "video": video_triplets,
    "vimeo90k": vimeo90k_triplets,
    "ucf101": ucf101_triplets,
    "snu-film": snu_film_triplets,
    "xiph": xiph_triplets,
    "gopro": gopro_triplets,
    "adobe240": adobe240_triplets,
}
