"""Identity metrics: each generated image (``--pred``, a file or a folder) against every reference photo
of the identity (``--gt``, a file or a folder); one value per generated image, pooled mean."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from triptych.errors import InputError
from triptych.folders import visible_files
from triptych.media import IMAGE_SUFFIXES

OPTIONS: frozenset[str] = frozenset()


def _images(path: Path, flag: str) -> list[Path]:
    if not path.exists():
        raise InputError(f"{flag} {path}: no such file or folder", fix="check the path")
    if path.is_file():
        return [path]
    images = visible_files(path)
    others = [p for p in images if p.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        raise InputError(f"{others[0]}: not a PNG or JPEG image, inside {flag} {path}",
                         fix="move it out of the folder (hidden files such as .DS_Store are ignored)")
    if not images:
        raise InputError(f"{flag} {path}: no PNG or JPEG images found", fix="check the path")
    return images


def run(m: Any, score: Callable[..., float]) -> None:
    pred_root, references = Path(m.inputs.pred), _images(Path(m.inputs.gt), "--gt")
    for image in m.track(_images(pred_root, "--pred"), lambda p: p.name):
        sample_id = image.stem if pred_root.is_file() else image.relative_to(pred_root).with_suffix("").as_posix()
        value = float(score(image, references, **m.params))
        m.aggregate.update(value)
        m.per_sample.append((sample_id, value))
    m.extras["references"] = [str(p) for p in references]
