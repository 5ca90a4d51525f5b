"""Set metrics over images (FID, KID): one value for the set of generated images (``--pred``) against the
set of real images (``--gt``). Each is a file or a folder; a folder's PNG and JPEG images are read
recursively in sorted order, unpaired (the two sets may differ in size). Each set needs two images or more.

``per_sample`` stays empty; the aggregate is the set's value (``video_set.SetValue``) and ``extras`` holds
what the metric reports (Fréchet components and covariance ranks; KID's subsets, subset size and seed)
and the two image counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from triptych.errors import InputError
from triptych.measure_kinds.identity_images import _images
from triptych.measure_kinds.video_set import SetValue

OPTIONS: frozenset[str] = frozenset()


def _sets(m: Any) -> tuple[list[Path], list[Path]]:
    generated, real = _images(Path(m.inputs.pred), "--pred"), _images(Path(m.inputs.gt), "--gt")
    for images, flag in ((generated, "--pred"), (real, "--gt")):
        if len(images) < 2:
            raise InputError(f"{m.metric.name} is a set metric: {flag} needs at least two images, got {len(images)}",
                             fix=f"pass a folder of images as {flag}")
    return generated, real


def check(m: Any, score: Callable[..., Any]) -> None:
    """Both sets exist and hold two images or more, checked before any weights are looked up."""
    _sets(m)


def run(m: Any, score: Callable[..., Any]) -> None:
    generated, real = _sets(m)
    result = score(real, generated, **m.params)
    m.aggregate = SetValue(result.value, result.count, result.reduction)
    m.extras.update(result.extras())
    m.extras.update(n_generated=len(generated), n_real=len(real))
