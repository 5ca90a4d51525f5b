"""What produced a part: its fingerprint, and why a part written earlier no longer matches.

A scored part (one sample's rows, or the set-level metrics' part) is stored with a fingerprint of exactly
what produced it (README, "When something goes wrong"):

* for every run: the benchmark's version and variant parameters, the data manifest's sha256, and each
  metric variant's version and weights;
* for a method: its identity (registry name, version, plugin distribution and version, weights sha256,
  parameters), or for a Python object its class and ``version``;
* for a prediction folder: the sha256 of each file the part read under ``--pred-dir`` (relative paths),
  recorded while the sample is scored (``reading_under``), whatever reader opened them.

On resume a part is reused only when its stored fingerprint equals the current one; ``changes`` says why
it does not (``method.version 1 -> 2``, ``prediction tennis/00001.png changed``).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from triptych.errors import TriptychError
from triptych.manifests import sha256_file
from triptych.results import json_safe

PREDICTIONS = "predictions"  # the fingerprint key of a prediction folder's files: {relative path: sha256}

_reading: list[tuple[str, set[str]]] = []  # (root + separator, relative paths opened under it), innermost last
_hook_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" or not _reading or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    root, opened = _reading[-1]
    if path.startswith(root):
        opened.add(path[len(root):].replace(os.sep, "/"))


@contextmanager
def reading_under(root: str | Path) -> Iterator[set[str]]:
    """Within this block, collect the relative paths of every file this process opens under ``root`` (the
    ``open`` audit event: Python's ``open``, ``os.open``, ``Path.read_bytes``, PIL, NumPy alike)."""
    global _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)  # process-wide and permanent; it records only inside this block
        _hook_installed = True
    opened: set[str] = set()
    _reading.append((os.path.join(os.path.abspath(root), ""), opened))
    try:
        yield opened
    finally:
        _reading.pop()


def canonical(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint as it reads back from a part file (JSON: tuples become lists, paths strings), so a
    fingerprint computed now compares equal to the same one stored earlier."""
    return json.loads(json.dumps(json_safe(dict(fingerprint)), sort_keys=True, default=str))


def hash_files(root: str | Path, relative: Iterable[str], what: str) -> dict[str, str]:
    """``{relative path: sha256}`` of regular files under ``root`` (folders opened for listing are skipped).
    ``what`` names the reader for the error when no file was read at all."""
    root = Path(root)
    found = {rel: sha256_file(root / rel) for rel in sorted(relative) if (root / rel).is_file()}
    if not found:
        raise TriptychError(f"{what} read no file under {root}, so its result cannot be tied to the predictions",
                            fix="report this as a triptych bug: every prediction reader must open its files")
    return found


def current_predictions(root: str | Path, stored: Mapping[str, str]) -> dict[str, str | None]:
    """The sha256 of each file a part recorded, as it is now (None: the file is gone)."""
    root = Path(root)
    return {rel: sha256_file(root / rel) if (root / rel).is_file() else None for rel in stored}


def changes(stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """Why a part's stored fingerprint differs from the current one (empty: it matches)."""
    if stored is None:
        return ["no fingerprint recorded (written by an older triptych)"]
    found: list[str] = []
    for key in sorted(set(stored) | set(current)):
        old, new = stored.get(key), current.get(key)
        if old == new:
            continue
        if key == PREDICTIONS and isinstance(old, dict) and isinstance(new, dict) and old:
            found += [f"prediction {rel} {'removed' if new.get(rel) is None else 'changed'}"
                      for rel in sorted(set(old) | set(new)) if old.get(rel) != new.get(rel)]
        else:
            found += _leaf_changes(key, old, new)
    return found


def _leaf_changes(path: str, old: Any, new: Any) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [change for key in sorted(set(old) | set(new), key=str) if old.get(key) != new.get(key)
                for change in _leaf_changes(f"{path}.{key}", old.get(key), new.get(key))]
    return [f"{path} {_short(old)} -> {_short(new)}"]


def _short(value: Any) -> str:
    text = "none" if value is None else str(value)
    return text[:12] if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text


def summarize(reasons: Mapping[str, list[str]], limit: int = 4) -> str:
    """``{part: [reason, ...]}`` as one line: the distinct reasons, most frequent first."""
    counts: dict[str, int] = {}
    for found in reasons.values():
        for reason in found:
            counts[reason] = counts.get(reason, 0) + 1
    ordered = sorted(counts, key=lambda r: (-counts[r], r))
    shown = "; ".join(ordered[:limit])
    return shown + (f"; and {len(ordered) - limit} more" if len(ordered) > limit else "")
