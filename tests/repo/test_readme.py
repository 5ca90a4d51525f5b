"""The README cannot drift: every ```bash block runs on the embedded sample, doctest style, and every
``--help`` text works and names only README sections and files that exist (issue 20).

The blocks run in README order in one working folder (a user following the README), with ``.venv/bin/triptych``
the interpreter under test. Where a block shows expected output as ``#`` comment lines after a command, the
command's output must hold that text (whitespace collapsed, so README line wrapping does not matter). Inputs the
README asks the user to supply (``my_outputs/``, ``my_method/``) are made here from the sample itself, and
upper-case placeholders (``RUN_ID``) are filled in. A block or line that cannot run here is listed below with
the reason; any other block runs, so a new block that cannot run fails until it is listed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

README = REPO / "README.md"
SAMPLE = REPO / "datasets/samples/tennis"

# blocks (by their first line) that do not run here
NOT_RUN = {
    ".venv/bin/pytest": "the test suite itself (CI runs it, .ci/run)",
    ".venv/bin/pytest -m slow tests/perf/test_speed_targets.py tests/perf/test_scale.py --benchmark-enable "
    "--benchmark-json speed.json":
        "the speed suite (minutes; CI runs the slow suites, .ci/run) and the README rewrite it feeds; "
        "tests/scripts/test_speed_table.py checks the rewrite",
    ".venv/bin/triptych weights import i3d_rgb_imagenet ~/Downloads/i3d_rgb_imagenet.pt":
        "needs the I3D weights file downloaded by the user",
    ".venv/bin/triptych measure ewarp --variant files --pred my_method/tennis --gt gt/tennis --flow-dir flows/tennis --json":
        "needs stored optical flows (flows/tennis), which the repository does not hold",
    "dvc exp run -S standardize_vos.name=davis-test -S standardize_vos.layout=e2fgvi \\":
        "needs the DAVIS dataset and E2FGVI's weights",
}
# single lines of blocks that otherwise run
NOT_RUN_LINES = {
    "python3 -m venv .venv": "the set-up of .ci/run (the demo it ends with runs, in the workspace fixture)",
    '.venv/bin/pip install -c constraints.txt -e ".[all]"': "installs from PyPI (the set-up of .ci/run)",
    ".venv/bin/triptych reproduce 4.1 --method amt-s --data-root datasets --out runs/table-4.1 --device cuda":
        "needs a GPU and AMT's weights",
}


def _blocks() -> list[tuple[str, str]]:
    """(section heading, block text) of every ```bash block, in README order."""
    text = README.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(r"```bash\n(.*?)\n```", text, flags=re.S):
        headings = re.findall(r"^#+ (.*)$", text[:match.start()], flags=re.M)
        found.append((headings[-1] if headings else "", match.group(1)))
    return found


def _commands(block: str) -> list[tuple[str, str]]:
    """(command, expected output) pairs: ``\\`` continuations joined, following ``#`` lines the expectation."""
    commands: list[list[str]] = []
    continued = False
    for line in block.splitlines():
        if line.startswith("#") and commands and not continued:
            commands[-1][1] += " " + line.lstrip("#").strip()
        elif continued:
            commands[-1][0] += " " + line.strip().rstrip("\\").strip()
        elif line.strip():
            commands.append([line.rstrip("\\").strip(), ""])
        continued = line.endswith("\\")
    return [(command, expected.strip()) for command, expected in commands]


def _collapse(text: str) -> str:
    """Whitespace runs as one space, a table's borders as whitespace (its cells stay in reading order)."""
    return " ".join(re.sub("[\u2500-\u257f]", " ", text).split())


def _parts(command: str) -> list[str]:
    """The commands of an ``&&`` chain (the set-up line: venv, install, demo)."""
    return [part.strip() for part in command.split("&&")]


DEMO = ".venv/bin/triptych demo --out runs/demo"


# what the README asks the user to supply, made from the sample
def _frames(folder: Path, stems: list[str] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for frame in sorted((SAMPLE / "frames").iterdir()):
        if stems is None or frame.stem in stems:
            shutil.copy2(frame, folder / frame.name)


def _prepare(work: Path, command: str) -> str:
    """Make the inputs ``command`` names and fill in its placeholders; returns the command to run."""
    if "--pred my_method/tennis" in command:
        _frames(work / "my_method/tennis")
    if "--pred-dir my_outputs/" in command:
        shutil.rmtree(work / "my_outputs", ignore_errors=True)  # each benchmark's layout of one method's outputs
        triplets = "sample-triplets" in command
        _frames(work / "my_outputs/tennis", ["00001", "00006", "00011", "00016", "00021"] if triplets else None)
    if "DATA_ROOT" in command:
        _frames(work / "my_data/videos/tennis")
        command = command.replace("DATA_ROOT", "my_data").replace("--name NAME", "--name my-data")
    if "RUN_ID" in command:
        from triptych.results import list_runs

        command = command.replace("RUN_ID", list_runs(work / "runs/demo")[0]["run_id"][:20])  # a unique prefix
    return command


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    """A folder holding the checkout's datasets and a ``.venv/bin/triptych`` of this interpreter, where the
    README's demo has run (``runs/demo``), shared by every block."""
    work = tmp_path_factory.mktemp("readme")
    (work / "datasets").symlink_to(REPO / "datasets")
    (work / ".venv/bin").mkdir(parents=True)
    launcher = work / ".venv/bin/triptych"
    launcher.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m triptych \"$@\"\n")
    launcher.chmod(0o755)
    setup = _blocks()[0][1]
    assert _parts(_commands(setup)[0][0])[-1] == DEMO, setup
    _run(work, DEMO, "")
    return work


def _run(work: Path, command: str, expected: str) -> None:
    env = {**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"README command failed: {command}\n{result.stdout}\n{result.stderr}"
    if expected:
        assert _collapse(expected) in _collapse(result.stdout), (
            f"README shows for `{command}`:\n{expected}\nbut it prints:\n{result.stdout}")


BLOCKS = _blocks()


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"{i}-{h[:30]}" for i, (h, _) in enumerate(BLOCKS)])
def test_readme_block_runs(index: int, workspace: Path) -> None:
    block = BLOCKS[index][1]
    first = block.splitlines()[0]
    if first in NOT_RUN:
        pytest.skip(NOT_RUN[first])
    for command, expected in _commands(block):
        for part in _parts(command):
            if part not in NOT_RUN_LINES and part != DEMO:  # the workspace fixture ran the demo
                _run(workspace, _prepare(workspace, part), expected)


def test_every_listed_exception_is_a_readme_block_or_line() -> None:
    """An entry for a block or line the README no longer has is stale: the README changed, update the list."""
    firsts = {block.splitlines()[0] for _, block in BLOCKS}
    lines = {part for _, block in BLOCKS for command, _ in _commands(block) for part in _parts(command)}
    assert set(NOT_RUN) <= firsts, set(NOT_RUN) - firsts
    assert set(NOT_RUN_LINES) <= lines, set(NOT_RUN_LINES) - lines


def _subcommands() -> list[list[str]]:
    """Every command path of the CLI (``score``, ``runs list``, ...)."""
    import typer.main

    from triptych.cli import app

    def walk(group, prefix):
        for name, command in sorted(getattr(group, "commands", {}).items()):
            yield [*prefix, name]
            yield from walk(command, [*prefix, name])

    return [[], *walk(typer.main.get_command(app), [])]


def _headings() -> set[str]:
    return {h.strip() for h in re.findall(r"^#+ (.*)$", README.read_text(encoding="utf-8"), flags=re.M)}


@pytest.mark.parametrize("path", _subcommands(), ids=lambda p: " ".join(p) or "triptych")
def test_help_exits_0_and_names_what_exists(path: list[str], run_cli, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option: no name is wrapped
    code, out, err = run_cli(*path, "--help")
    assert code == 0, err
    assert "Usage:" in out
    text = _collapse(out)
    for section in re.findall(r"README(?: section)?:? ['\"]([^'\"]+)['\"]", text):
        assert section in _headings(), f"`triptych {' '.join(path)} --help` names README section {section!r}"
    for name in re.findall(r"(?<![\w/.-])((?:docs|datasets|benchmarks|metrics|baselines|examples)/[\w./-]*\w)", text):
        assert (REPO / name).exists(), f"`triptych {' '.join(path)} --help` names {name}, which does not exist"
