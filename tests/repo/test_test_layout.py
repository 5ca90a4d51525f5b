"""Tests mirror the source tree (docs/architecture.md, "Where tests go"): every test module sits in the folder of
the source folder it tests, or in one of the cross-cutting folders, and imports no test module of another folder."""

from __future__ import annotations

import ast
import tomllib

from conftest import REPO

TESTS = REPO / "tests"
# source folders that have tests, as the tests' sub-folder -> the source folder it mirrors
MIRRORED = {"metrics": "metrics", "baselines": "baselines", "benchmarks": "benchmarks", "pipelines": "pipelines",
            "leaderboard": "leaderboard", "core": "triptych", "core/vision": "triptych/vision",
            "core/commands": "triptych/commands", "scripts": "scripts"}
CROSS_CUTTING = {"repo", "bad_inputs", "perf"}
SHARED_HELPERS = {"conftest.py", "vfi_fake_layouts.py", "vos_fake_layouts.py", "face_onnx.py"}


def _folder(path) -> str:
    return path.parent.relative_to(TESTS).as_posix()


def test_every_test_module_sits_beside_the_source_folder_it_tests():
    misplaced = [p.relative_to(REPO).as_posix() for p in TESTS.rglob("test_*.py")
                 if _folder(p) not in MIRRORED and _folder(p) not in CROSS_CUTTING]
    assert not misplaced, f"move these into the tests/ folder of the source they test: {misplaced}"
    for tests_folder, source in MIRRORED.items():
        assert (REPO / source).is_dir(), f"tests/{tests_folder} mirrors {source}/, which does not exist"


def test_no_tests_folder_shadows_the_installed_package():
    """pytest puts tests/ on sys.path (rootdir conftest), so a tests/triptych folder would be imported as the
    ``triptych`` package under a plain ``pytest``, and package data (triptych/data/tasks.yaml) would be looked up
    in the tests folder: the core's tests live in tests/core."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    top_level = {name.split(".")[0] for name in pyproject["tool"]["setuptools"]["package-dir"]}
    shadowing = sorted(p.name for p in TESTS.iterdir() if p.is_dir() and p.name in top_level)
    assert not shadowing, f"rename these tests/ folders, they shadow an installed package: {shadowing}"


def test_the_top_of_tests_holds_only_shared_helpers():
    top = {p.name for p in TESTS.glob("*.py")}
    assert top == SHARED_HELPERS, f"unexpected modules at the top of tests/: {sorted(top - SHARED_HELPERS)}"


def test_no_test_module_imports_a_test_module_of_another_folder():
    folders = {p.stem: _folder(p) for p in TESTS.rglob("test_*.py")}
    assert len(folders) == len(list(TESTS.rglob("test_*.py"))), "test module names must be unique across folders"
    crossing = []
    for path in TESTS.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            crossing += [f"{path.relative_to(REPO)} imports {n}" for n in names
                         if n in folders and folders[n] != _folder(path)]
    assert not crossing, f"move the shared helper to a module at the top of tests/: {crossing}"
