"""The method label and version a run records (run.json, every row, the leaderboard and the gate).

A registered method is recorded under its registry name and version. A prediction folder (``--pred-dir``)
is recorded as ``pred-dir`` unless ``--name NAME`` (``triptych.evaluate(..., name=...)``) names it, with
``--method-version`` as its version. A name is a safe label (letters, digits, ``.``, ``_``, ``-``, at most
64 characters, starting with a letter or digit) and never a registered method's name, so an external
method cannot pass for a registered one on the leaderboard; ``--name M`` with ``--method M`` only repeats
the method's own label and is accepted.
"""

from __future__ import annotations

import re

from triptych.errors import TriptychError
from triptych.registry import registry

PRED_DIR_LABEL = "pred-dir"  # the label of an unnamed prediction folder
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SAFE_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def check_safe(value: str, option: str, pattern: re.Pattern[str] = _SAFE) -> str:
    """``value`` unchanged when it is a safe label, else a refusal naming ``option``."""
    if not pattern.fullmatch(value):
        allowed = "letters, digits, '.', '_', '-'" + (", '+'" if pattern is _SAFE_VERSION else "")
        raise TriptychError(f"{option} {value!r} is not a safe label",
                            fix=f"use {allowed} only (at most 64 characters, starting with a letter or digit)")
    return value


def method_label(method: str | None, name: str | None, in_process: bool = False) -> str:
    """The label a run records: ``method`` (a registered name, or a method object's label when
    ``in_process``), or for a prediction folder (``method`` None) ``name`` or ``pred-dir``."""
    if name is None:
        return method if method is not None else PRED_DIR_LABEL
    check_safe(name, "--name")
    if method is not None and not in_process:
        if name != method:
            raise TriptychError(f"--name {name!r} with --method {method!r}: a registered method is recorded under "
                                "its registry name", fix=f"leave out --name (or pass --name {method})")
        return name
    if name in registry().methods:
        spec = registry().methods[name]
        raise TriptychError(f"--name {name!r} is the registered {spec.task} method {name!r} ({spec.source}): "
                            "your outputs would pass for it on the leaderboard and in the gate",
                            fix=f"choose another name, e.g. --name my-{name}, or score it with --method {name}")
    return name


def method_version_of(version: str | None, registered: bool) -> str | None:
    """``--method-version`` checked: a safe label, and only where no registry entry records the version."""
    if version is None:
        return None
    if registered:
        raise TriptychError(f"--method-version {version!r} with --method: the registry entry's version is recorded",
                            fix="leave out --method-version (it names the version of --pred-dir outputs)")
    return check_safe(version, "--method-version", _SAFE_VERSION)
