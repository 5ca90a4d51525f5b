"""Set metrics over groups of generated images (face diversity): one value for the whole ``--pred`` folder.

``--pred`` is a folder; its PNG and JPEG images are read recursively and grouped by the folder that holds
them, named by that folder's path relative to ``--pred`` (``.`` for images directly inside it). On the
personalization layout ``<id_slug>/<NN>_<prompt_slug>/<k>.png`` (docs/conventions.md) a group is one
(identity, prompt). Images are sorted within a group. There is no ground truth: ``--gt`` is refused
(``USES_GT``). ``--weights`` is a user file for the metric's trunk (recorded as user-supplied, in place of
the registry entry it ``replaces``).

``per_sample`` stays empty (one ``level=set`` value, docs/conventions.md); the aggregate is the set's value and
``extras`` holds the metric's counts (groups, pairs, images without a face, skipped groups).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from triptych.errors import InputError
from triptych.inputs import bind
from triptych.measure_kinds.identity_images import _images
from triptych.measure_kinds.video_set import SetValue
from triptych.weights import describe

OPTIONS: frozenset[str] = frozenset({"--weights"})
USES_GT = False


def groups_of(root: Path) -> dict[str, list[Path]]:
    """``--pred``'s images grouped by their folder's path relative to ``root``; a folder is required."""
    if root.is_file():
        raise InputError(f"--pred {root}: a set metric over groups needs a folder, got one file",
                         fix="pass the folder of generated images (<id_slug>/<NN>_<prompt_slug>/<k>.png)")
    groups: dict[str, list[Path]] = defaultdict(list)
    for image in _images(root, "--pred"):
        groups[image.parent.relative_to(root).as_posix()].append(image)
    return dict(groups)


def check(m: Any, score: Callable[..., Any]) -> None:
    """At least one group holds two images, checked before any weights are looked up."""
    groups = groups_of(Path(m.inputs.pred))
    if max(len(images) for images in groups.values()) < 2:
        raise InputError(f"{m.metric.name} compares images within a folder: no folder under --pred "
                         f"{m.inputs.pred} holds two images ({len(groups)} folders)",
                         fix="put each (identity, prompt)'s images in one folder: <id_slug>/<NN>_<prompt_slug>/<k>.png")


def run(m: Any, score: Callable[..., Any]) -> None:
    groups = groups_of(Path(m.inputs.pred))
    offered = {"weights": m.inputs.weights}  # --weights, the input ``weights`` the variant declares
    kwargs = bind(m.variant.inputs, offered, f"{m.metric.name}:{m.variant.name}")
    result = score(groups, **kwargs, **m.variant.params)
    if m.inputs.weights is not None:  # the user's trunk stands in for one registry entry; the rest are the registry's
        m.weights = [result.weights, *(describe(n) for n in m.variant.weights if n != result.weights["replaces"])]
        m.user_trunk = result.weights  # labels the rows VARIANT+user-<sha8> unless it is the registry's file
    m.aggregate = SetValue(result.value, result.count, result.reduction)
    m.extras.update(result.extras())
