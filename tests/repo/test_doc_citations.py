"""The repository is self-contained: every protocol fact the code cites is on a page of docs/.

Three rules, over every file git tracks:

- no file outside docs/ cites a page by the bare names ``protocols.md`` or ``conventions.md`` (the
  reference pages that lie outside the repository); citations name the page in docs/, e.g.
  ``docs/protocols/video_completion.md`` or ``docs/conventions.md``;
- no file cites the shared folder's docs (``shared/docs/...``);
- the code and specs (every folder but tests/) cite no golden-fixture README either (``shared/fixtures``):
  the facts such a README holds are on a docs/ page. Tests may name the fixtures they read, and
  ``shared/data`` stays nameable as the place user-supplied data is laid out from.

Every docs/ page such a citation names must exist.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from conftest import REPO

BARE_PAGE = re.compile(r"(?<![\w/.-])(protocols|conventions)\.md")
SHARED_DOCS = re.compile(r"shared/docs\b")
FIXTURE_README = re.compile(r"shared/fixtures\b")
DOCS_PAGE = re.compile(r"(?<![\w/.-])docs/[\w/.-]+\.md\b")
OTHER_REPOSITORY = re.compile(r"[\w-]+/[\w.-]+ $")  # "MCG-NKU/AMT docs/develop.md" is another repository's
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".cfg", ".json", ".html", ".j2", ""}


def _tracked_text_files() -> list[str]:
    """Tracked files (the working tree's, untracked but not ignored included) that hold text."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"not a git checkout: {out.stderr.strip()}")
    paths = [p for p in out.stdout.splitlines()
             if (REPO / p).is_file() and (REPO / p).suffix in TEXT_SUFFIXES and not p.startswith("datasets/samples/")]
    return [p for p in paths if p != "tests/repo/test_doc_citations.py"]


def _violations(pattern: re.Pattern[str], paths: list[str]) -> list[str]:
    found = []
    for path in paths:
        text = (REPO / path).read_text(errors="replace")
        found += [f"{path}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}" for m in pattern.finditer(text)]
    return found


def test_no_bare_reference_page_outside_docs() -> None:
    paths = [p for p in _tracked_text_files() if not p.startswith("docs/") and p != "dvc.lock"]
    assert _violations(BARE_PAGE, paths) == [], "cite the page in docs/ instead (docs/protocols/<task>.md, ...)"


def test_no_citation_of_the_shared_docs() -> None:
    assert _violations(SHARED_DOCS, [p for p in _tracked_text_files() if p != "dvc.lock"]) == []


def test_code_cites_no_fixture_readme() -> None:
    paths = [p for p in _tracked_text_files() if not p.startswith(("tests/", "docs/")) and p not in
             {"README.md", "dvc.lock", ".ci/run"}]
    assert _violations(FIXTURE_README, paths) == [], "put the fact on a docs/ page and cite that page"


def test_cited_docs_pages_exist() -> None:
    missing = []
    for path in _tracked_text_files():
        for line in (REPO / path).read_text(errors="replace").splitlines():
            missing += [f"{path}: {m.group(0)}" for m in DOCS_PAGE.finditer(line)
                        if not OTHER_REPOSITORY.search(line[:m.start()]) and not (REPO / m.group(0)).is_file()]
    assert missing == []


def test_the_rules_catch_what_they_forbid() -> None:
    """Each pattern finds the citation it is written against, and lets the in-repository form pass."""
    assert BARE_PAGE.search("(protocols.md section 1)") and BARE_PAGE.search("see conventions.md")
    assert not BARE_PAGE.search("docs/conventions.md") and not BARE_PAGE.search("docs/protocols/vfi.md")
    assert SHARED_DOCS.search("``shared/docs/weights_rule.md``")
    assert FIXTURE_README.search("../shared/fixtures/inpainting/README.md")
