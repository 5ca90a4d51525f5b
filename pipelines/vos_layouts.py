"""Input layouts of the DAVIS / YouTube-VOS video-completion test sets, read as the reference loaders read
them (docs/protocols/video_completion.md). Both loaders name a frame's mask by the frame's index, ``<i:05d>.png``,
never by the frame's file name, and both decode frames with OpenCV (``IMREAD_COLOR``, then BGR -> RGB).

- ``e2fgvi`` (E2FGVI @ 709cbe3 ``core/dataset.py`` ``TestDataset``, ``core/utils.py`` ``TestZipReader``):
  ``<root>/test.json`` maps video -> frame count and its key order is the evaluation order; frame ``i``
  of a video is the ``i``-th member of the sorted name list of ``<root>/JPEGImages/<video>.zip``; its
  mask is ``<root>/test_masks/<video>/<i:05d>.png``.
- ``folders`` (ProPainter ``core/dataset.py`` ``TestDataset``, and raw DAVIS-2017
  ``JPEGImages/480p/<video>/``): frame ``i`` is the ``i``-th file of the sorted listing of the frames
  folder, its mask ``<masks>/<video>/<i:05d>.png``. Folders are given as path templates with ``{video}``.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

import cv2
import numpy as np

from triptych.errors import InputError, TriptychError
from triptych.folders import visible_entries
from triptych.media import IMAGE_SUFFIXES

LAYOUTS = ("folders", "e2fgvi")


def decode_frame(data: bytes, where: str) -> np.ndarray:
    """Both references' frame decoding: ``cv2.imdecode(..., IMREAD_COLOR)`` then BGR -> RGB (uint8 HxWx3)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{where}: cannot decode image", fix="the frame is corrupt or truncated; re-download it")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class SourceVideo:
    """One video of a layout: where its frames are and the folder of its ``<i:05d>.png`` masks."""

    name: str
    frames: Path  # a frames folder, or a per-video zip
    frame_names: tuple[str, ...]  # sorted file names in the folder, or sorted member names in the zip
    masks: Path

    def mask(self, index: int) -> Path:
        return self.masks / f"{index:05d}.png"

    def iter_frames(self) -> Iterator[np.ndarray]:
        """The decoded frames in order, one at a time (a video never sits in memory whole)."""
        if self.frames.is_file():  # a per-video zip
            with _open_zip(self.frames) as archive:
                for member in self.frame_names:
                    try:
                        data = archive.read(member)
                    except (zipfile.BadZipFile, OSError) as exc:
                        raise InputError(f"{self.frames}: member {member!r} is corrupt ({exc})",
                                         fix=_ZIP_FIX.format(zip=self.frames)) from exc
                    yield decode_frame(data, f"{self.frames}:{member}")
        else:
            for name in self.frame_names:
                yield decode_frame((self.frames / name).read_bytes(), str(self.frames / name))

    def unused_masks(self) -> int:
        """Check every frame has its mask; return how many mask PNGs no frame uses (the references ignore them)."""
        if not self.masks.is_dir():
            raise InputError(f"video {self.name!r} has frames ({self.frames}) but no masks: {self.masks} not found",
                             fix="unpack the published mask set so that each video has <masks>/<video>/00000.png, "
                                 "00001.png, ... (E2FGVI's test_masks/), or fix the masks path")
        missing = [self.mask(i) for i in range(len(self.frame_names)) if not self.mask(i).is_file()]
        if missing:
            raise InputError(f"video {self.name!r}: {len(missing)} of {len(self.frame_names)} masks missing "
                             f"(first: {missing[0]}); mask i is named <i:05d>.png after the frame's index",
                             fix="restore the video's complete mask folder from the published mask set")
        return sum(1 for p in visible_entries(self.masks) if p.suffix.lower() == ".png") - len(self.frame_names)


class Layout(Protocol):
    def index(self) -> dict[str, int]:
        """Every video present (with frames), name -> frame count, in the layout's own order."""

    def video(self, name: str) -> SourceVideo: ...


_ZIP_FIX = ("re-download it, or rebuild it from the video's frames (cd JPEGImages/480p/<video> && "
            "zip -0 {zip} *.jpg)")


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: not a readable zip ({exc})", fix=_ZIP_FIX.format(zip=path)) from exc


def zip_frame_names(path: Path) -> tuple[str, ...]:
    """The sorted member list ``TestZipReader`` indexes (directory entries left out); every member must be
    an image, since frame ``i`` is simply the ``i``-th name."""
    with _open_zip(path) as archive:
        names = sorted(n for n in archive.namelist() if not n.endswith("/"))
    others = [n for n in names if Path(n).suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        raise InputError(f"{path}: members that are not frames: {', '.join(others[:5])}",
                         fix="E2FGVI takes frame i as the i-th sorted member: the zip must hold only the frames")
    if not names:
        raise InputError(f"{path}: the zip holds no frames", fix=_ZIP_FIX.format(zip=path))
    return tuple(names)


def folder_frame_names(folder: Path) -> tuple[str, ...]:
    return tuple(p.name for p in visible_entries(folder) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_frame_counts(path: Path, what: str) -> dict[str, int]:
    """A ``test.json``-style list: a JSON object video -> frame count, its key order kept."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"{path}: {what} not found", fix="check the path") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: {what} is not valid JSON ({exc})", fix="restore the file") from exc
    if not isinstance(document, dict) or not all(isinstance(c, int) and c > 0 for c in document.values()):
        raise InputError(f"{path}: {what} must be a JSON object video -> frame count (positive integers)",
                         fix='e.g. {"bear": 82, "blackswan": 50}')
    return {str(k): int(v) for k, v in document.items()}


class E2fgviLayout:
    """``<root>/JPEGImages/<video>.zip``, ``<root>/test_masks/<video>/``, ``<root>/test.json``."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise InputError(f"{root}: folder not found", fix="pass the folder holding JPEGImages/, test_masks/ "
                                                             "and test.json (E2FGVI's datasets/davis)")
        self.root = root
        self.test_json = read_frame_counts(root / "test.json", "the E2FGVI layout's test.json")

    def _zip(self, name: str) -> Path:
        return self.root / "JPEGImages" / f"{name}.zip"

    def index(self) -> dict[str, int]:
        """test.json's videos that have a zip, in its order (other zips, such as the training videos E2FGVI
        keeps in the same folder, are not read). A zip whose frame count differs from test.json is an error:
        E2FGVI would silently read a different video."""
        counts = {}
        for name, listed in self.test_json.items():
            if self._zip(name).is_file():
                counts[name] = len(zip_frame_names(self._zip(name)))
                if counts[name] != listed:
                    raise InputError(f"{self._zip(name)}: {counts[name]} frames, but {self.root / 'test.json'} "
                                     f"says {listed}", fix="restore the original zip (or test.json): E2FGVI reads "
                                                           "frames 0..N-1 of the sorted members, N from test.json")
        return counts

    def video(self, name: str) -> SourceVideo:
        return SourceVideo(name, self._zip(name), zip_frame_names(self._zip(name)), self.root / "test_masks" / name)


def _fill(template: str, video: str) -> Path:
    return Path(template.replace("{video}", video))


class FoldersLayout:
    """Frames ``<frames>/{video}/``, masks ``<masks>/{video}/``, both path templates with ``{video}``."""

    def __init__(self, frames: str, masks: str) -> None:
        for what, template in (("frames", frames), ("masks", masks)):
            if "{video}" not in template:
                raise TriptychError(f"{what} template {template!r} has no {{video}} placeholder",
                                    fix="e.g. --frames /data/DAVIS/JPEGImages/480p/{video} --masks "
                                        "/data/davis/test_masks/{video}")
        self.frames, self.masks = frames, masks

    def index(self) -> dict[str, int]:
        """Videos whose frames folder exists, sorted by name (ProPainter sorts its listing)."""
        parent = Path(self.frames.split("{video}", 1)[0] or ".")
        if not parent.is_dir():
            raise InputError(f"{parent}: folder not found (frames template {self.frames!r})",
                             fix="check the frames path")
        names = [d.name for d in visible_entries(parent) if d.is_dir() and _fill(self.frames, d.name).is_dir()]
        return {name: len(folder_frame_names(_fill(self.frames, name))) for name in names}

    def video(self, name: str) -> SourceVideo:
        folder = _fill(self.frames, name)
        return SourceVideo(name, folder, folder_frame_names(folder), _fill(self.masks, name))


def open_layout(layout: str, root: str, frames: str, masks: str) -> E2fgviLayout | FoldersLayout:
    if layout == "e2fgvi":
        if not root:
            raise TriptychError("the e2fgvi layout needs --root", fix="the folder with JPEGImages/*.zip, test_masks/ "
                                                                      "and test.json")
        return E2fgviLayout(Path(root))
    if layout == "folders":
        if not frames or not masks:
            raise TriptychError("the folders layout needs --frames and --masks templates",
                                fix="e.g. --frames /data/DAVIS/JPEGImages/480p/{video} --masks /data/masks/{video}")
        return FoldersLayout(frames, masks)
    raise TriptychError(f"unknown layout {layout!r}", fix=f"use one of: {', '.join(LAYOUTS)}")
