"""A fake video-completion test set laid out exactly like E2FGVI's ``datasets/davis`` (per-video zips of JPEG
frames, one mask PNG per frame, ``test.json``), shared by the VOS benchmark tests and the bad-input tests.
Returns the root to hand to ``standardize_vos --root``."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

RAW = (120, 64)  # raw frame (W, H), resized to the benchmark's 432x240
LAYOUT = {"bear": 3, "blackswan": 2, "camel": 2}  # test.json, in E2FGVI's order


def make_e2fgvi_davis(root: Path) -> Path:
    """E2FGVI's datasets/davis layout: per-video zips of JPEG frames, one mask PNG per frame (a block hole
    that moves), test.json."""
    rng = np.random.default_rng(3)
    (root / "JPEGImages").mkdir(parents=True)
    for v, (video, count) in enumerate(LAYOUT.items()):
        with zipfile.ZipFile(root / "JPEGImages" / f"{video}.zip", "w") as archive:
            for t in range(count):
                frame = rng.integers(0, 256, (RAW[1], RAW[0], 3), dtype=np.uint8)
                buffer = io.BytesIO()
                Image.fromarray(frame).save(buffer, "JPEG", quality=92)
                archive.writestr(f"{t:05d}.jpg", buffer.getvalue())
        (root / "test_masks" / video).mkdir(parents=True)
        for t in range(count):
            mask = np.zeros((RAW[1], RAW[0]), np.uint8)
            mask[10 + 3 * t:30 + 3 * t, 20 + 5 * v:50 + 5 * v] = 255
            Image.fromarray(mask).save(root / "test_masks" / video / f"{t:05d}.png")
    (root / "test.json").write_text(json.dumps(LAYOUT))
    return root
