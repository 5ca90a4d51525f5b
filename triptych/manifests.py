"""Data manifests: every split is a list of files with sha256, size and image dimensions.

A manifest is checked before any scoring, so a missing or changed file is named up front instead of
surfacing as a wrong number (or a crash) hours later. Its own sha256 (over its canonical JSON) is what a
run records as the data's identity.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from triptych.atomic import atomic_write_text
from triptych.errors import InputError, TriptychError
from triptych.folders import contained, visible_entries
from triptych.media import IMAGE_SUFFIXES, image_size
from triptych.progress import tracked

MANIFEST_VERSION = 1
_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative POSIX path under the manifest's root
    sha256: str
    size: int
    width: int | None
    height: int | None


@dataclass(frozen=True)
class Manifest:
    name: str
    entries: tuple[ManifestEntry, ...]
    groups: dict[str, int]  # e.g. video -> frame count, identity -> image count

    def document(self) -> dict:
        return {"manifest_version": MANIFEST_VERSION, "name": self.name, "groups": self.groups,
                "entries": [asdict(e) for e in self.entries]}

    @property
    def sha256(self) -> str:
        canonical = json.dumps(self.document(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _entry(root: Path, rel: str) -> ManifestEntry:
    path = root / rel
    width = height = None
    if path.suffix.lower() in IMAGE_SUFFIXES:
        width, height = image_size(path)
    return ManifestEntry(rel, sha256_file(path), path.stat().st_size, width, height)


def build_manifest(name: str, root: str | Path, files: Iterable[str], groups: dict[str, int]) -> Manifest:
    """The manifest of ``files`` under ``root``: each file hashed, with a progress display
    (``triptych.progress``: on a terminal, or with ``--progress``)."""
    root = Path(root)
    return Manifest(name, tuple(_entry(root, rel) for rel in tracked(sorted(files), f"manifest {name}", "files")),
                    dict(groups))


def write_manifest(manifest: Manifest, path: str | Path) -> Path:
    return atomic_write_text(path, json.dumps(manifest.document(), indent=1, sort_keys=True) + "\n")


def read_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TriptychError(f"{path}: manifest not found", fix="regenerate it (see the benchmark's card)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TriptychError(f"{path}: corrupt manifest ({exc})", fix="regenerate it") from exc
    except OSError as exc:  # a folder named like the manifest, or a data root that is a file
        raise TriptychError(f"{path}: cannot read the manifest ({exc.strerror})",
                            fix="check --data-root: it must be the data folder holding manifests/") from exc
    if not isinstance(doc, dict) or doc.get("manifest_version") != MANIFEST_VERSION:
        version = doc.get("manifest_version") if isinstance(doc, dict) else None
        raise TriptychError(f"{path}: manifest version {version!r}, expected {MANIFEST_VERSION}")
    absent = sorted({"name", "groups", "entries"} - set(doc))
    if absent:
        raise TriptychError(f"{path}: manifest without {', '.join(absent)}",
                            fix="regenerate the manifest with 'triptych manifest build' instead of editing it")
    fields = set(ManifestEntry.__dataclass_fields__)
    entries = []
    for i, e in enumerate(doc["entries"]):
        if not isinstance(e, dict) or set(e) != fields:
            keys = sorted(e) if isinstance(e, dict) else type(e).__name__
            raise TriptychError(f"{path}: entry {i} ({e.get('path', '?') if isinstance(e, dict) else e!r}) has "
                                f"keys {keys}, expected {sorted(fields)}",
                                fix="regenerate the manifest with 'triptych manifest build' instead of editing it")
        entries.append(ManifestEntry(**e))
    return Manifest(doc["name"], tuple(entries), dict(doc["groups"]))


def verify_manifest(manifest: Manifest, root: str | Path) -> None:
    """Check every listed file under ``root``: present, same size, same sha256. Names what differs."""
    root = Path(root)
    missing, changed = [], []
    for entry in manifest.entries:
        path = contained(root, entry.path, f"manifest {manifest.name!r}")
        if not path.is_file():
            missing.append(entry.path)
        elif path.stat().st_size != entry.size or sha256_file(path) != entry.sha256:
            changed.append(entry.path)
    if missing or changed:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {root / missing[0]})")
        if changed:
            parts.append(f"{len(changed)} changed since the manifest was made (first: {root / changed[0]})")
        raise InputError(f"data of {manifest.name!r} under {root} does not match its manifest: " + "; ".join(parts),
                         fix="restore the original files (git checkout / re-download); if the change is "
                             "intended, regenerate the manifest and bump the benchmark version")


def check_folders_listed(manifest: Manifest, root: Path, folders: list[Path]) -> None:
    """Each folder a loader lists holds only files of the manifest: a frame added beside the listed ones
    would be scored while the run records the unchanged manifest sha256. Extras are named, all at once;
    hidden system files are ignored."""
    listed = {e.path for e in manifest.entries}
    extra = [p.relative_to(root).as_posix() for folder in folders for p in visible_entries(folder)
             if p.is_file() and p.relative_to(root).as_posix() not in listed]
    if extra:
        raise InputError(f"data of {manifest.name!r} under {root}: {len(extra)} file(s) not in its manifest: "
                         + ", ".join(extra[:5]) + (f", ... ({len(extra) - 5} more)" if len(extra) > 5 else ""),
                         fix="move them out of the folder; if the data changed on purpose, regenerate the "
                             "manifest and bump the benchmark version")
