"""What is in a folder, and where a path built from data may point.

- Hidden system files (``is_hidden``): any path component starting with ``.`` (``.DS_Store``,
  ``.ipynb_checkpoints``, ``._x.png``) or named ``Thumbs.db`` / ``desktop.ini``. They are ignored by every
  loader, ``--pred-dir`` check and manifest, and never count as an extra or missing file.
- Contained paths (``contained``): a path built from data (a sample id, a listing or manifest entry) must
  stay inside its root: ``../`` or an absolute entry is refused, naming the entry. Symbolic links that the
  user placed inside the root are followed (DVC's symlink cache links data files out of the folder).
- Exact folders (``check_exact_files``): a folder of predictions holds exactly the expected files; every
  missing, extra or duplicate file and every stray folder is named in one error.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping

from triptych.errors import InputError

HIDDEN_NAMES = frozenset({"Thumbs.db", "desktop.ini"})
_SHOWN = 5  # offenders named per kind in one message


def is_hidden(rel: str | Path) -> bool:
    """True for a hidden system file or folder, or anything inside one (``rel`` relative to its root)."""
    return any(part.startswith(".") or part in HIDDEN_NAMES for part in Path(rel).parts)


def visible_entries(folder: Path) -> list[Path]:
    """The folder's entries (files and folders) in sorted order, hidden system files left out."""
    return sorted(p for p in folder.iterdir() if not is_hidden(p.name))


def visible_files(root: Path) -> list[Path]:
    """Every file under ``root`` (recursively, sorted), nothing inside a hidden system folder."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not is_hidden(p.relative_to(root)))


def relative_entry(entry: str, what: str) -> PurePosixPath:
    """A path entry from data (a sample id, a listing or manifest row) as a relative path that cannot climb
    out of the folder it is joined to: not empty, not absolute, no ``..`` component."""
    rel = PurePosixPath(str(entry).replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise InputError(f"{what}: entry {str(entry)!r} points outside its folder",
                         fix="entries are relative paths inside their root (no '..', no absolute path); fix or "
                             "regenerate the listing")
    return rel


def contained(root: Path, entry: str, what: str) -> Path:
    """``root / entry`` for an entry checked by ``relative_entry`` (``what`` names where it came from).
    Symbolic links inside the root are followed as placed (e.g. DVC's symlink cache)."""
    return root / relative_entry(entry, what)


def name_some(paths: Iterable[str]) -> str:
    """The first few of ``paths`` (sorted), and how many more there are."""
    paths = sorted(paths)
    shown = ", ".join(paths[:_SHOWN])
    return shown + (f", ... ({len(paths) - _SHOWN} more)" if len(paths) > _SHOWN else "")


def refuse_inexact(flag: str, root: Path, layout: str, kinds: list[tuple[str, list[str]]], note: str = "") -> None:
    """One ``InputError`` naming every offender of every kind, e.g. ("file not expected", [...]), if any."""
    problems = [f"{kind} ({len(items)}): {name_some(items)}" for kind, items in kinds if items]
    if problems:
        raise InputError(f"{flag} {root} does not hold exactly the expected files ({layout}){note}: "
                         + "; ".join(problems),
                         fix=f"write one file per expected sample ({layout}); remove or move everything else")


def check_exact_files(root: Path, expected: Mapping[str, tuple[str, ...]], flag: str, layout: str) -> dict[str, Path]:
    """The file of each expected stem under ``root`` (``expected``: relative POSIX stem -> accepted suffixes,
    lower case), after checking that ``root`` holds exactly those files: missing stems, files nobody
    expects, stems given twice (``00003.png`` beside ``00003.jpg``) and folders that hold no expected file
    are all named in one ``InputError``. Hidden system files are ignored."""
    found: dict[str, list[Path]] = {}
    extra: list[str] = []
    for path in visible_files(root):
        rel = path.relative_to(root)
        stem = rel.with_suffix("").as_posix()
        if stem in expected and path.suffix.lower() in expected[stem]:
            found.setdefault(stem, []).append(path)
        else:
            extra.append(rel.as_posix())
    wanted_dirs = {p for stem in expected for p in PurePosixPath(stem).parents}
    stray = [p.relative_to(root).as_posix() + "/" for p in root.rglob("*")
             if p.is_dir() and not is_hidden(p.relative_to(root))
             and PurePosixPath(p.relative_to(root).as_posix()) not in wanted_dirs]
    stray_tops = [s for s in stray if not any(s != t and s.startswith(t) for t in stray)]
    missing = [f"{stem}{expected[stem][0]}" for stem in expected if stem not in found]
    doubled = [" and ".join(p.name for p in paths) for stem, paths in found.items() if len(paths) > 1]
    extra = [e for e in extra if not any(e.startswith(s) for s in stray_tops)]
    note = "; nothing matches, so it may be laid out for another benchmark" if not found else ""
    refuse_inexact(flag, root, layout, [("prediction missing", missing), ("file not expected", extra),
                                        ("stem given twice", doubled), ("stray folder", stray_tops)], note)
    return {stem: paths[0] for stem, paths in found.items()}
