"""Sanity baselines for identity-preserving generation: a ceiling and a floor for identity metrics.

- ``reference_copy`` returns one of the reference photos it was given. That is what a perfect identity
  copy scores (under leave-one-out scoring: the same person in a different photo).
- ``other_id`` returns a reference photo of a different identity in the benchmark's portrait set. That
  is what an image of the wrong person scores.

- ``blank`` returns a uniform mid-grey image (uint8 128 in every channel): no face, no identity, no
  content. Identity metrics score it below ``other_id`` (a face benchmark scores a faceless image by its
  stated policy, e.g. ``celeb-25id-40prompt``'s ``no_face``).

All follow ``triptych.methods.Generator``. They ignore the prompt, and the seed alone picks the image
(deterministic).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from triptych.errors import TriptychError
from triptych.methods import read_reference
from triptych.vision.face import content_key, to_uint8_rgb


def _check_num_images(num_images: int) -> int:
    if int(num_images) < 1:
        raise TriptychError(f"num_images must be at least 1, got {num_images}", fix="set num_images: 1 or more")
    return int(num_images)


class ReferenceCopy:
    """Returns references ``(seed + i) mod n`` for i < num_images, unchanged (float32 copies)."""

    def __init__(self, num_images: int = 1) -> None:
        self.num_images = _check_num_images(num_images)

    def generate(self, reference_images: Sequence[torch.Tensor], prompt: str, seed: int) -> list[torch.Tensor]:
        if len(reference_images) == 0:
            raise TriptychError("reference_copy was given no reference images", fix="pass at least one")
        n = len(reference_images)
        return [reference_images[(seed + i) % n].detach().to("cpu", torch.float32).clone()
                for i in range(self.num_images)]


def make_reference_copy(num_images: int = 1) -> ReferenceCopy:
    return ReferenceCopy(num_images)


class OtherId:
    """Returns a photo of an identity other than the one whose references it was given.

    How it finds the current identity: at construction it reads every photo in the pool
    (``context.identities``) and records the sha256 of its uint8 pixels. At ``generate`` each given
    reference tensor is rounded back to uint8 (the harness passes ``read_rgb(path) / 255``, so this
    is exact) and looked up. All given references must belong to one pool identity, or it is an
    error. The candidates are the photos of every other identity, in sorted (identity, path) order;
    image i is candidate ``(seed + i) mod len(candidates)``.
    """

    def __init__(self, identities: dict[str, list[Path]], num_images: int = 1) -> None:
        self.num_images = _check_num_images(num_images)
        if len(identities) < 2:
            raise TriptychError(f"other_id needs a portrait set of at least 2 identities, got {len(identities)}",
                                fix="add another identity folder to the portrait set")
        self._pool = {name: sorted(Path(p) for p in paths) for name, paths in identities.items()}
        self._owner: dict[str, str] = {}
        for name, paths in sorted(self._pool.items()):
            for path in paths:
                self._owner.setdefault(content_key(to_uint8_rgb(read_reference(path), str(path))), name)

    def identity_of(self, reference_images: Sequence[torch.Tensor]) -> str:
        """The pool identity that the given reference photos belong to."""
        if len(reference_images) == 0:
            raise TriptychError("other_id was given no reference images", fix="pass at least one")
        owners = {self._owner.get(content_key(to_uint8_rgb(r, f"reference image {i}")))
                  for i, r in enumerate(reference_images)}
        if None in owners:
            raise TriptychError("other_id: a given reference image is not in the benchmark's portrait set, so "
                                "the identity to avoid is unknown",
                                fix="pass the portrait set's photos unmodified (read_rgb / 255, no resizing)")
        if len(owners) != 1:
            raise TriptychError(f"other_id: the given references belong to several identities: {sorted(owners)}",
                                fix="pass the references of one identity per call")
        return owners.pop()

    def generate(self, reference_images: Sequence[torch.Tensor], prompt: str, seed: int) -> list[torch.Tensor]:
        current = self.identity_of(reference_images)
        candidates = [p for name, paths in sorted(self._pool.items()) if name != current for p in paths]
        return [read_reference(candidates[(seed + i) % len(candidates)]) for i in range(self.num_images)]


def make_other_id(context: Any = None, num_images: int = 1) -> OtherId:
    """Factory for ``other_id``. ``context`` is the benchmark's portrait set: any object with
    ``identities: dict[str, list[Path]]``, such as ``triptych.benchmarks.portrait_folders.PortraitSet``."""
    identities = getattr(context, "identities", None)
    if not isinstance(identities, dict):
        raise TriptychError("other_id needs the benchmark's portrait set (an object with .identities) as context",
                            fix="build it with build_method(spec, context=load_portraits(root))")
    return OtherId(identities, num_images)


MID_GREY = 128  # uint8 level of the blank image


class Blank:
    """Returns ``num_images`` uniform (3, size, size) images of ``MID_GREY / 255`` (exactly 128 as uint8)."""

    def __init__(self, size: int = 512, num_images: int = 1) -> None:
        if int(size) < 1:
            raise TriptychError(f"blank: size must be at least 1 pixel, got {size}", fix="set size: 512")
        self.size = int(size)
        self.num_images = _check_num_images(num_images)

    def generate(self, reference_images: Sequence[torch.Tensor], prompt: str, seed: int) -> list[torch.Tensor]:
        return [torch.full((3, self.size, self.size), MID_GREY / 255.0, dtype=torch.float32)
                for _ in range(self.num_images)]


def make_blank(size: int = 512, num_images: int = 1) -> Blank:
    return Blank(size, num_images)
