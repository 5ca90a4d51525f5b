"""Progress of a long command on stderr (items done / total, rate, ETA, current item), and the one line an
interruption prints (what was saved, the exact command that resumes).

Used by ``triptych score`` / ``demo`` / ``measure`` (samples), the DVC stages ``standardize_vos`` (videos),
``standardize_vfi`` and ``triptych manifest build`` (files hashed), and the per-image ID stages (images,
``pipelines/stage_io.ImageCache``). ``MODE`` is ``auto`` (shown when stderr is a terminal), ``on``
(``--progress``: a rich bar on a terminal, one plain line per item elsewhere, e.g. in a log) or ``off``
(``--quiet``). ``COMMAND`` is the command line the command was started with, which the interruption line
repeats (``dvc repro <stage>`` for a stage DVC runs); the Python API leaves it unset.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Sequence, TypeVar

MODE: ContextVar[str] = ContextVar("progress_mode", default="auto")
COMMAND: ContextVar[str | None] = ContextVar("resume_command", default=None)

Advance = Callable[[str], None]
Item = TypeVar("Item")


def set_mode(progress: bool, quiet: bool) -> None:
    """The ``--progress`` / ``--quiet`` options of a command (``--quiet`` wins)."""
    MODE.set("off" if quiet else "on" if progress else "auto")


def set_command(argv: Sequence[str], program: str = "triptych") -> None:
    """The command the interruption line repeats: ``program`` and ``argv``; for a DVC stage script run by
    ``dvc repro`` (DVC sets ``DVC_STAGE`` in its environment), ``dvc repro <stage>``."""
    stage = os.environ.get("DVC_STAGE") if program != "triptych" else None
    COMMAND.set(f"dvc repro {stage}" if stage else f"{program} {shlex.join(argv)}".strip())


def _eta(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@contextmanager
def sample_progress(label: str, total: int, done: int, unit: str = "samples") -> Iterator[Advance]:
    """A progress display over ``total`` items (``unit``) of which ``done`` were finished before (a resumed
    run); yields ``advance(item)``, called once per item finished now."""
    mode = MODE.get()
    terminal = sys.stderr.isatty()
    if mode == "off" or (mode == "auto" and not terminal):
        yield lambda sample_id: None
        return
    start, scored = time.monotonic(), 0

    def rate_and_eta() -> tuple[float, str]:
        rate = scored / max(time.monotonic() - start, 1e-9)
        return rate, _eta((total - done - scored) / rate) if rate > 0 else "?"

    if not terminal:  # --progress into a log: one plain line per sample
        def line(sample_id: str) -> None:
            nonlocal scored
            scored += 1
            rate, eta = rate_and_eta()
            print(f"{label}: {done + scored}/{total} {unit}, {rate:.2f} {unit}/s, ETA {eta}, {sample_id}",
                  file=sys.stderr, flush=True)
        yield line
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                  TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                  TextColumn("{task.fields[current]}"), console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total, completed=done, rate="", current="")

        def advance(sample_id: str) -> None:
            nonlocal scored
            scored += 1
            bar.update(task, advance=1, rate=f"{rate_and_eta()[0]:.2f}/s", current=sample_id)
        yield advance


def tracked(items: Sequence[Item], label: str, unit: str, name: Callable[[Item], str] = str) -> Iterator[Item]:
    """Each of ``items`` in turn under a ``sample_progress`` display, which advances (naming the item) when
    the next one is asked for, that is once the caller has finished with it."""
    with sample_progress(label, len(items), 0, unit) as advance:
        for item in items:
            yield item
            advance(name(item))


def interrupted_line(saved: str, resume: bool = True) -> str:
    """``interrupted: <saved>; resume with: <command>`` (``rerun with`` where nothing finished is reused):
    one line, on stderr."""
    command, verb = COMMAND.get(), "resume with" if resume else "rerun with"
    return f"interrupted: {saved}; " + (f"{verb}: {command}" if command else "the same call resumes it" if resume
                                        else "the same call runs it again")
