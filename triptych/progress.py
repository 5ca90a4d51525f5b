"""Progress of a scoring run on stderr (samples done / total, rate, ETA, current sample), and the one line
an interruption prints (what was saved, the exact command that resumes).

``MODE`` is ``auto`` (shown when stderr is a terminal), ``on`` (``--progress``: a rich bar on a terminal, one
plain line per sample elsewhere, e.g. in a log) or ``off`` (``--quiet``). ``COMMAND`` is the command line a
CLI command was started with, which the interruption line repeats; the Python API leaves it unset.
"""

from __future__ import annotations

import shlex
import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Sequence

MODE: ContextVar[str] = ContextVar("progress_mode", default="auto")
COMMAND: ContextVar[str | None] = ContextVar("resume_command", default=None)

Advance = Callable[[str], None]


def set_mode(progress: bool, quiet: bool) -> None:
    """The ``--progress`` / ``--quiet`` options of a command (``--quiet`` wins)."""
    MODE.set("off" if quiet else "on" if progress else "auto")


def set_command(argv: Sequence[str]) -> None:
    COMMAND.set("triptych " + shlex.join(argv))


def _eta(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@contextmanager
def sample_progress(label: str, total: int, done: int) -> Iterator[Advance]:
    """A progress display over ``total`` samples of which ``done`` were scored before (a resumed run);
    yields ``advance(sample_id)``, called once per sample scored now."""
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
            print(f"{label}: {done + scored}/{total} samples, {rate:.2f} samples/s, ETA {eta}, {sample_id}",
                  file=sys.stderr, flush=True)
        yield line
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("samples"),
                  TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                  TextColumn("{task.fields[current]}"), console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total, completed=done, rate="", current="")

        def advance(sample_id: str) -> None:
            nonlocal scored
            scored += 1
            bar.update(task, advance=1, rate=f"{rate_and_eta()[0]:.2f}/s", current=sample_id)
        yield advance


def interrupted_line(saved: str) -> str:
    """``interrupted: <saved>; resume with: <command>``: one line, on stderr."""
    command = COMMAND.get()
    return f"interrupted: {saved}; " + (f"resume with: {command}" if command else "the same call resumes it")
