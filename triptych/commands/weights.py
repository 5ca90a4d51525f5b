"""``triptych weights list|fetch|verify|import|unpin|path``"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from triptych import weights as w
from triptych.errors import TriptychError

weights_app = typer.Typer(help="Pretrained weights: the registry, the verified cache, offline imports.",
                          no_args_is_help=True)


@weights_app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json", help="print JSON on stdout")) -> None:
    """Every registered file: where it comes from, its pin, whether it is here, its licence."""
    rows = w.list_entries()
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("name", "source", "sha256", "present", "licence", title=f"triptych weights ({w.weights_dir()})")
    for row in rows:
        table.add_row(row["name"], row["source"], row["pin"], "yes" if row["present"] else "no", row["licence"])
    Console().print(table)


@weights_app.command("fetch")
def fetch_command(name: str = typer.Argument(..., help="registered name (see 'triptych weights list')")) -> None:
    """Download a file into the cache and verify it (refused in offline mode)."""
    path = w.fetch(name)
    print(f"{name}: {path}", file=sys.stderr)


@weights_app.command("verify")
def verify_command(name: Optional[str] = typer.Argument(None, help="one name; all entries when left out")) -> None:
    """Re-hash cached and installed files against their pins."""
    if name is not None:
        report = w.verify(name)
        sys.stdout.write(f"ok\t{report['name']}\t{report['sha256']}\t{report['path']}\n")
        return
    reports = w.verify_all()
    table = Table("name", "status", "sha256 / problem", title="triptych weights verify")
    for r in reports:
        table.add_row(r["name"], r["status"], r["sha256"] if r["status"] == "ok" else r["message"])
    Console().print(table)
    bad = [r["name"] for r in reports if r["status"] == "mismatch"]
    if bad:
        raise TriptychError(f"{len(bad)} weights file(s) do not match their pins: {', '.join(bad)}",
                            fix="run 'triptych weights verify NAME' for the details of each")


@weights_app.command("import")
def import_command(name: str = typer.Argument(..., help="registered name"),
                   path: Path = typer.Argument(..., help="the file you downloaded"),
                   user: bool = typer.Option(False, "--user", help="your own file for this entry (e.g. a fine-tuned "
                                             "trunk): kept apart from the verified cache, recorded with its sha256, "
                                             "its scores labelled VARIANT+user-<sha8>")) -> None:
    """Verify a file you downloaded yourself and copy it into the cache (works offline); with ``--user``,
    accept your own file for the entry without replacing the published one."""
    if not user:
        dest = w.import_file(name, path)
        print(f"{name}: imported to {dest}", file=sys.stderr)
        return
    record = w.import_user_file(name, path)
    sys.stdout.write(f"user\t{name}\tsha256 {record['sha256']}\t{record['path']}\n")
    label = "the registry's own file" if record["registered"] else f"rows labelled VARIANT+user-{record['sha256'][:8]}"
    print(f"{name}: user-supplied file kept at {record['path']} ({label}); score with "
          f"'triptych measure METRIC --weights {record['path']}'", file=sys.stderr)


@weights_app.command("unpin")
def unpin_command(name: str = typer.Argument(..., help="an unpinned entry's name")) -> None:
    """Remove a trust-on-first-use pin and its cached file; prints the record kept in unpins.jsonl."""
    record = w.unpin(name)
    pin = record["pin"]
    sys.stdout.write(f"unpinned\t{name}\tsha256 {pin.get('sha256')}\tpinned {pin.get('recorded_utc', '?')} from "
                     f"{pin.get('origin', '?')}\tremoved file {record['removed_file'] or '-'}\n")
    print(f"{name}: the next file must pass the first-use checks again; record kept in "
          f"{w.weights_dir() / 'unpins.jsonl'}", file=sys.stderr)


@weights_app.command("path")
def path_command(name: str = typer.Argument(..., help="registered name")) -> None:
    """Print the verified local path of a registered file on stdout."""
    sys.stdout.write(f"{w.resolve(name)}\n")


def register(app: typer.Typer) -> None:
    app.add_typer(weights_app, name="weights")
