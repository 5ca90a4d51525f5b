"""DIS warp: a frame interpolator that warps both frames to time t along OpenCV DIS flow and blends them.

A complete external triptych method implementing ``triptych.methods.Interpolator``.

The package imports nothing heavy: every triptych command loads this entry point, so torch and the
method's code (``method.py``: ``from triptych_flow_interp.method import ...``) are imported only when the
method runs.
"""

from __future__ import annotations


def triptych_methods() -> dict:
    return {"dis-warp": {
        "task": "frame_interpolation",
        "version": 1,
        "description": "example plugin: warps both frames halfway along OpenCV DIS flow and blends them",
        "callable": "triptych_flow_interp.method:make_dis_warp",
        "inputs": {},  # none of weights, device, context (docs/conventions.md, "Declared inputs")
    }}
