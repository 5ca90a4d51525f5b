"""Reference portrait folders: one folder of photos per identity, named ``<name>_<classword>``.

The layout the sample portraits have and the personalization benchmarks read (docs/conventions.md,
``--pred-dir`` layouts): the class word is the folder suffix, one of a closed list; an identity's name becomes
a folder name through :func:`id_slug`. Shared by the leave-one-out benchmark (``benchmarks/personalization.py``),
the 25-ID protocol (``benchmarks/celeb_protocol.py``) and the ID dataset pipeline, and light to import (no torch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from triptych.errors import InputError
from triptych.folders import visible_entries
from triptych.media import IMAGE_SUFFIXES

# The class words a folder suffix may carry (thesis 5.2.3: "man, woman, boy, girl, ..."). A closed list,
# so a folder like ``alan_turing`` fails loudly instead of getting the class word "turing".
CLASS_WORDS = ("man", "woman", "boy", "girl", "person", "child", "kid", "baby", "lady", "gentleman")


@dataclass(frozen=True)
class PortraitSet:
    """Reference photos per identity name, with each identity's class word.

    ``identities`` maps a name to its image paths, sorted. ``class_words`` maps the same names to their
    class words.
    """

    root: Path
    identities: dict[str, list[Path]]
    class_words: dict[str, str]


def split_class_word(folder: str) -> tuple[str, str]:
    """``newton_man`` -> ``("newton", "man")``. The last ``_`` separates the class word."""
    name, sep, word = folder.rpartition("_")
    if not sep or not name or word.lower() not in CLASS_WORDS:
        raise InputError(
            f"portrait folder {folder!r} has no class-word suffix (expected <name>_<classword>, with the "
            f"class word one of {', '.join(CLASS_WORDS)})",
            fix=f"rename it, e.g. {folder.rstrip('_')}_man or {folder.rstrip('_')}_woman",
        )
    return name, word.lower()


def load_portraits(root: str | Path) -> PortraitSet:
    """Read ``<root>/<name>_<classword>/*.{jpg,jpeg,png}``. Hidden entries and loose files are ignored.

    Errors name the folder: a missing root, a root without identity folders, a folder without a
    class-word suffix, a folder without images, two folders with the same name.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: portrait folder not found", fix="point at a folder of <name>_<classword>/ folders")
    identities: dict[str, list[Path]] = {}
    class_words: dict[str, str] = {}
    folders = [p for p in visible_entries(root) if p.is_dir()]
    if not folders:
        raise InputError(f"{root}: no identity folders found",
                         fix="put each identity's reference photos in <root>/<name>_<classword>/")
    for folder in folders:
        name, word = split_class_word(folder.name)
        if name in identities:
            raise InputError(f"{folder}: identity {name!r} is declared by two folders",
                             fix="keep one folder per identity")
        images = [p for p in visible_entries(folder) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            raise InputError(f"{folder}: no JPEG or PNG reference images",
                             fix="add the identity's reference photos, or remove the empty folder")
        identities[name] = images
        class_words[name] = word
    return PortraitSet(root, identities, class_words)


def id_slug(name: str) -> str:
    """docs/conventions.md: the name in lower case, every run of non-alphanumerics replaced by ``_``.

    >>> id_slug("Alan Turing (young)")
    'alan_turing_young_'
    """
    return re.sub(r"[^0-9a-z]+", "_", name.lower())
