"""Keep freed memory in the process instead of handing it back to the kernel after every frame.

glibc's ``malloc`` serves each block above ``M_MMAP_THRESHOLD`` (128 KiB at first) with its own ``mmap`` and
returns the heap's free top above ``M_TRIM_THRESHOLD`` to the kernel. Nearly every numpy temporary of a
432x240 frame is above that size, so without this each one is mapped, page-faulted page by page, and
unmapped again, for every frame: on the ``ssim:win65`` run of issue #24 that was as much system time as
the metric's own arithmetic (2.5 s of 5.7 s of CPU for 276 frames; 0.14 s with these settings). Raising both
thresholds lets the freed blocks be reused; the process keeps at most ``TRIM_THRESHOLD`` bytes of free heap.
Other C libraries (musl, macOS) are left as they are.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1  # malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD = 256 * 1024 * 1024


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (module docstring); False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
