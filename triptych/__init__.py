"""triptych: a benchmark harness for video completion, frame interpolation and portrait personalization.

The core package holds the registry, results schema, media readers and CLI; the task code lives in
``triptych.metrics``, ``triptych.benchmarks``, ``triptych.baselines``, ``triptych.pipelines`` and
``triptych.leaderboard`` (installed from the repository's top-level folders).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("triptych")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


def __getattr__(name: str):
    """``triptych.evaluate`` and ``triptych.Results``, imported on first use (they pull in torch and pandas)."""
    if name in ("evaluate", "Results"):
        from triptych import api

        return getattr(api, name)
    raise AttributeError(f"module 'triptych' has no attribute {name!r}")
