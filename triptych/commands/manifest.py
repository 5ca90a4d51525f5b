"""``triptych manifest build|verify``: sha256 manifests of data folders."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import List

import typer

from triptych.errors import InputError

manifest_app = typer.Typer(help="Build and check sha256 manifests of data folders.", no_args_is_help=True)


@manifest_app.command("build")
def build_command(
    root: Path = typer.Argument(..., help="data folder; manifest paths are relative to it"),
    name: str = typer.Option(..., "--name", help="manifest name, e.g. sample-tennis"),
    out: Path = typer.Option(..., "--out", help="manifest JSON to write"),
    include: List[str] = typer.Option(["**/*"], "--include", help="glob(s) under ROOT"),
) -> None:
    """List every file under ROOT matching --include with its sha256, size and image size (hidden system
    files such as .DS_Store are left out, as every loader ignores them)."""
    from triptych.manifests import build_manifest, write_manifest

    from triptych.folders import is_hidden

    files = sorted({p.relative_to(root).as_posix() for g in include for p in root.glob(g)
                    if p.is_file() and not is_hidden(p.relative_to(root))})
    if not files:
        raise InputError(f"{root}: no files match {include}", fix="check ROOT and --include")
    groups = Counter(str(Path(f).parent.as_posix()) for f in files)
    manifest = build_manifest(name, root, files, dict(sorted(groups.items())))
    write_manifest(manifest, out)
    typer.echo(f"{out}: {len(files)} files, sha256 {manifest.sha256}")


@manifest_app.command("verify")
def verify_command(manifest: Path = typer.Argument(...), root: Path = typer.Argument(...)) -> None:
    """Check that every file of MANIFEST is present and unchanged under ROOT."""
    from triptych.manifests import read_manifest, verify_manifest

    loaded = read_manifest(manifest)
    verify_manifest(loaded, root)
    typer.echo(f"{manifest}: {len(loaded.entries)} files match")


def register(app: typer.Typer) -> None:
    app.add_typer(manifest_app, name="manifest")
