"""The ``triptych`` command line. Sub-commands live in ``triptych.commands`` (one module each).

Errors the user can act on (``TriptychError``) are printed on stderr with their fix, and the process
exits with status 2; stdout carries only the command's result.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

import triptych.commands
from triptych.errors import TriptychError

app = typer.Typer(name="triptych", help=__doc__.splitlines()[0], no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)

for _info in sorted(pkgutil.iter_modules(triptych.commands.__path__), key=lambda i: i.name):
    importlib.import_module(f"triptych.commands.{_info.name}").register(app)


def main(argv: list[str] | None = None) -> int:
    from triptych.progress import set_command

    set_command(sys.argv[1:] if argv is None else argv)  # repeated by the line a Ctrl-C prints
    try:
        app(args=argv, prog_name="triptych")
    except TriptychError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # typer's standalone mode exits with the command's status
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
