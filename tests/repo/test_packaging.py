"""One distribution, ``triptych``; the top-level folders are installed as its subpackages only."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import distribution


def test_task_packages_import_as_subpackages_from_outside_the_checkout(tmp_path):
    code = ("import importlib, importlib.util as u\n"
            "for m in ['triptych.metrics','triptych.benchmarks','triptych.baselines','triptych.pipelines',"
            "'triptych.leaderboard']: importlib.import_module(m)\n"
            "for bare in ['metrics','benchmarks','baselines','pipelines','leaderboard','datasets']:\n"
            "    assert u.find_spec(bare) is None, bare\n")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)


def test_console_script_and_python_range():
    dist = distribution("triptych")
    assert any(ep.name == "triptych" and ep.value == "triptych.cli:main" for ep in dist.entry_points)
    assert dist.metadata["Requires-Python"] == "<3.13,>=3.10"


def test_every_python_folder_is_a_listed_package():
    """pyproject lists packages explicitly (package-dir mapping): a folder left out would be missing from a
    built wheel even though the editable install finds it."""
    import tomllib

    from conftest import REPO

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for package, folder in config["package-dir"].items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((package, *rel)))
    assert found == listed
