"""DIS warp: a frame interpolator that warps both frames to time t along OpenCV DIS flow and blends them.

A complete external triptych method implementing ``triptych.methods.Interpolator``.

The package imports nothing heavy: every triptych command loads this entry point, so torch and the
method's code (``method.py``) are imported only when the method runs.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """``DisWarp`` and ``make_dis_warp`` from ``method.py``, imported on first use."""
    if name in ("DisWarp", "make_dis_warp"):
        from triptych_flow_interp import method

        return getattr(method, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def triptych_methods() -> dict:
    return {"dis-warp": {
        "task": "frame_interpolation",
        "version": 1,
        "description": "example plugin: warps both frames halfway along OpenCV DIS flow and blends them",
        "callable": "triptych_flow_interp.method:make_dis_warp",
    }}
