"""Atomic file writes: a temporary file in the same folder, fsync, then ``os.replace``.

A crash or a full disk never leaves a half-written results file behind; a write that fails says which
file and why, and removes its temporary file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Callable

from triptych.errors import TriptychError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # a read-only file system, a folder without write permission, a file in the way
        raise write_error(path, exc) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are shared files
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(path, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_error(path: Path, exc: OSError) -> TriptychError:
    """The error of a write into ``path`` that the system refused, with the fix for its cause."""
    full = exc.errno == errno.ENOSPC or "No space left on device" in str(exc)  # pyarrow sets no errno
    refused = exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST)
    hint = ("free some disk space" if full else
            "write to a folder you can write to (the output option, e.g. --out)" if refused else
            "check permissions and free space")
    return TriptychError(f"{path}: could not write ({exc.strerror or exc})", fix=hint)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
