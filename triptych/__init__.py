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
