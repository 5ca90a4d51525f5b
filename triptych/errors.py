"""One exception type for every user-facing failure.

Each error says what went wrong, names the file or value involved, and says how to fix it. The CLI
prints ``message`` and ``fix`` on stderr and exits non-zero; nothing is ever returned as 0 or NaN.
"""

from __future__ import annotations


class TriptychError(Exception):
    """A failure the user can act on: ``message`` says what, ``fix`` says how to repair it."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message if fix is None else f"{message}\n  fix: {fix}")

    def __reduce__(self):  # keep message and fix when an error crosses a process boundary (executors)
        return (type(self), (self.message, self.fix))


class InputError(TriptychError):
    """Bad input data: a missing, unreadable, mis-sized or wrongly typed file."""


class UnknownNameError(TriptychError):
    """A metric, benchmark, method or variant name that the registry does not know."""


class SpecError(TriptychError):
    """A spec (registry entry, plugin entry, benchmark variant, method parameters, gate rule, weights entry)
    that does not follow its declared schema (``triptych.schema``)."""


class SchemaError(TriptychError):
    """A results file that does not follow the results schema (or an unsupported schema version)."""
