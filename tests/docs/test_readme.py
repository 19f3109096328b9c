"""The README's links land, and no file of the project points outside the repository.

The site itself is checked by `make docs` (`mkdocs build --strict`: a broken link or anchor
between pages, or a page left out of the nav, fails it). These tests cover what MkDocs does
not see: README.md, which lives outside docs/.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(markdown: Path) -> set[str]:
    """The heading ids MkDocs (toc's default slugify) and GitHub give this file."""
    ids = set()
    for heading in re.findall(r"^#{1,6} (.+)$", markdown.read_text(), re.M):
        text = re.sub(r"[`*]", "", heading).strip().lower()
        ids.add(re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", text)))
    return ids


def test_every_link_of_the_readme_lands() -> None:
    # GIVEN every relative link of the README
    links = [link for link in _LINK.findall(README.read_text()) if "://" not in link]
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        path, _, anchor = link.partition("#")
        target = ROOT / path if path else README
        # THEN the file exists, and so does the heading it points at
        assert target.exists(), f"README links to {link}, which does not exist"
        if anchor:
            assert anchor in anchors(target), f"README links to {link}: no such heading"


def test_the_readme_links_every_page_of_the_site() -> None:
    linked = {link.partition("#")[0] for link in _LINK.findall(README.read_text())}
    assert {f"docs/{page.name}" for page in DOCS} <= linked


def test_no_file_of_the_project_points_outside_the_repository() -> None:
    # GIVEN every text file git tracks (this test, which names what it looks for, aside)
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = []
    for name in tracked:
        path = ROOT / name
        if (
            path == Path(__file__).resolve()
            or path.suffix in {".png", ".ico"}
            or not path.is_file()
        ):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        # THEN none cites the private field notes or a path of this machine outside the repo
        if "FIELD" + "-NOTES" in text or "/work/" + "shared" in text:
            offenders.append(name)
    assert offenders == []


def test_the_performance_page_shows_the_bench_plot() -> None:
    page = (ROOT / "docs" / "performance.md").read_text()
    assert "](assets/bench-throughput.png)" in page
    image = ROOT / "docs" / "assets" / "bench-throughput.png"
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
