"""Reduced-precision inference of the model ports (E2FGVI, E2FGVI-HQ, AMT): ``fp32`` (the default, the
published numerics), ``bf16`` or ``fp16``.

The network runs under ``torch.autocast`` with the chosen type (PyTorch keeps its float32-only operations
in float32); frames go in and come out as float32. ``fp16`` runs on CUDA only; ``bf16`` also on CPU. A
reduced precision is its own registered method (``e2fgvi-bf16``, ``amt-l-fp16``, ... in
baselines/specs/e2fgvi.yaml and amt.yaml), so its runs are recorded under that name and never pair with
published rows (README "Pairing rule": the method is not in baselines/specs/published_methods.yaml).
"""

from __future__ import annotations

import contextlib
import warnings
from typing import ContextManager

import torch

from triptych.errors import InputError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device, method: str) -> None:
    """``precision`` must be one of ``DTYPES``, and ``fp16`` needs a CUDA device; ``bf16`` on a CPU that only
    emulates it warns (``SlowPrecisionWarning``)."""
    if precision not in DTYPES:
        raise InputError(f"{method}: precision {precision!r} is not one of {', '.join(DTYPES)}",
                         fix="use fp32 (published numerics), bf16 (CPU or CUDA) or fp16 (CUDA)")
    if precision == "fp16" and device.type != "cuda":
        raise InputError(f"{method}: precision fp16 runs on CUDA only, the device is {device}",
                         fix="pass --device cuda, or use the bf16 method on CPU")
    if precision == "bf16" and device.type == "cpu" and not native_cpu_bf16():
        warnings.warn(f"{method}: this CPU has no bfloat16 instructions (AVX-512 or AMX), so oneDNN emulates "
                      "bf16: expect it to run many times slower than fp32 (docs/performance.md, 'Reduced "
                      "precision')", SlowPrecisionWarning, stacklevel=2)


class SlowPrecisionWarning(UserWarning):
    """A reduced precision that this device only emulates."""


def native_cpu_bf16() -> bool:
    """Whether oneDNN computes bfloat16 with this CPU's own instructions (AVX-512 or AMX); without them
    it emulates bf16, and an E2FGVI window took over 15 minutes instead of 37 s in float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(precision: str, device: torch.device) -> ContextManager[object]:
    """The context a forward pass runs in: nothing for ``fp32``, else ``torch.autocast`` to the type."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])
