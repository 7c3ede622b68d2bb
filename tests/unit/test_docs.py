"""README.md is the front door and docs/ the manual: every relative link (and its #anchor)
resolves, every docs page is reachable from the README, the Guarantees table names tests that
exist, and the README keeps the commands CI runs (.ci/run: make setup, make test)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(path: Path) -> str:
    """The page without its fenced code blocks (their '#' lines are not headings)."""
    return re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6} (.+)$", _prose(path), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def _links(path: Path) -> list[str]:
    return [t for t in LINK.findall(_prose(path)) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page):
    for target in _links(page):
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        assert dest.exists(), f"{page.name}: {target} does not exist"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{page.name}: no heading for #{anchor} in {file}"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in _links(ROOT / "README.md")}
    for page in PAGES[1:]:
        assert page.resolve() in linked, f"README.md does not link {page.relative_to(ROOT)}"


def test_the_guarantees_table_names_tests_that_exist():
    rows = [r for r in (ROOT / "docs" / "reliability.md").read_text().splitlines()
            if r.startswith("| ") and "`tests/" in r]
    assert len(rows) >= 20
    for row in rows:
        current = None
        for file, test in re.findall(r"`(tests/[\w/]+\.py)?(::\w+)?`", row):
            current = file or current
            assert current and (ROOT / current).is_file(), row
            if test:
                assert f"def {test[2:]}(" in (ROOT / current).read_text(), f"{current}{test}"


def test_the_readme_keeps_the_commands_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    for target in ("setup", "test"):
        assert f"make {target}" in ci
        assert re.search(rf"^make {target}\b", readme, flags=re.M) or f"`make {target}`" in readme
    tests = readme.split("\n## Tests", 1)[1].split("\n## ", 1)[0]
    for command in ("make test ", "make test-fast", "make test-unit", "make lint"):
        assert command in tests
