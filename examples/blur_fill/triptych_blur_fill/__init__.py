"""Blur fill: completes each frame's hole by normalized convolution, coarse to fine.

A complete external triptych method. ``triptych_methods`` is the entry point that registers it; the
class implements ``triptych.methods.Inpainter``.

The package imports nothing heavy: every triptych command loads this entry point, so torch and the
method's code (``method.py``: ``from triptych_blur_fill.method import ...``) are imported only when the
method runs.
"""

from __future__ import annotations


def triptych_methods() -> dict:
    return {"blur-fill": {
        "task": "video_inpainting",
        "version": 1,
        "description": "example plugin: fills the hole by normalized blur, coarse to fine",
        "callable": "triptych_blur_fill.method:make_blur_fill",
        "inputs": {},  # none of weights, device, context (docs/conventions.md, "Declared inputs")
        "params": {"passes": 6},
    }}
