"""Copy and jitter: a portrait "generator" that returns a reference photo, mirrored and colour-jittered by
the seed. A complete external triptych method implementing ``triptych.methods.Generator``.

The package imports nothing heavy: every triptych command loads this entry point, so torch and the
method's code (``method.py``: ``from triptych_copy_jitter.method import ...``) are imported only when the
method runs.
"""

from __future__ import annotations


def triptych_methods() -> dict:
    return {"copy-jitter": {
        "task": "personalization",
        "version": 1,
        "description": "example plugin: a reference photo, mirrored and colour-jittered by the seed",
        "callable": "triptych_copy_jitter.method:make_copy_jitter",
        "inputs": {},  # none of weights, device, context (docs/conventions.md, "Declared inputs")
        "params": {"strength": 0.1},
    }}
