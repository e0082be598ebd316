"""The documentation: short README, links that resolve, every setting documented, no history notes.

Pure text checks over README.md and docs/*.md; no Spark.
"""

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_LIMIT = 12 * 1024
#: `BILLING_*` names in the code that are Python constants, not environment variables.
NOT_SETTINGS = {"BILLING_TZ"}


def _tokens(path: Path) -> list:
    return MarkdownIt("commonmark").enable("table").parse(path.read_text())


def links(path: Path) -> list[str]:
    """Every link and image target of a markdown file (inline and in tables), code excluded."""
    found = []
    for token in _tokens(path):
        for child in token.children or []:
            if child.type == "link_open":
                found.append(child.attrGet("href"))
            elif child.type == "image":
                found.append(child.attrGet("src"))
    return found


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a markdown file's headings."""
    tokens = _tokens(path)
    return {anchor(tokens[i + 1].content) for i, token in enumerate(tokens) if token.type == "heading_open"}


def relative_links() -> list[tuple[Path, str]]:
    return [(doc, target) for doc in DOCS for target in links(doc) if not re.match(r"^[a-z]+:", target)]


def test_the_docs_exist_one_topic_a_file() -> None:
    names = {doc.name for doc in DOCS}
    expected = {"architecture", "rules", "guarantees", "analysts", "performance", "testing", "operations"}
    assert {f"{name}.md" for name in expected} <= names
    readme_links = {target for target in links(ROOT / "README.md")}
    assert {f"docs/{name}.md" for name in expected} <= readme_links  # the README leads to each


def test_the_readme_is_at_most_12_kib() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; move detail to docs/"


@pytest.mark.parametrize(("doc", "target"), relative_links(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_every_relative_link_and_image_resolves(doc: Path, target: str) -> None:
    path, _, fragment = target.partition("#")
    file = (doc.parent / path).resolve() if path else doc
    assert file.exists(), f"{doc.relative_to(ROOT)} links to {target}: no such file"
    assert ROOT in file.parents or file == ROOT, f"{doc.relative_to(ROOT)} links outside the repository: {target}"
    if fragment and file.suffix == ".md":
        assert fragment in anchors(file), f"{doc.relative_to(ROOT)} links to {target}: no such heading"


def test_links_are_found_in_tables_and_images() -> None:
    # The link test above is only as good as the extraction: a table cell's link and an image count.
    assert "docs/lineage.png" in links(ROOT / "README.md")
    assert "docs/architecture.md" in links(ROOT / "README.md")  # in the documentation table


def test_every_setting_the_code_reads_is_in_the_readme_configuration_table() -> None:
    code = [*(ROOT / "billing_assets").rglob("*.py"), *(ROOT / "scripts").iterdir()]
    names = {name for path in code for name in re.findall(r"\bBILLING_[A-Z0-9_]+\b", path.read_text())}
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :]
    table = table[: table.index("\n## ")]
    documented = set(re.findall(r"^\| `(BILLING_[A-Z0-9_]+)`", table, re.M))
    assert names - NOT_SETTINGS == documented


HASH = r"\b[0-9a-f]{7,40}\b"
HISTORY_NOTES = [
    re.compile(rf"fresh clone of {HASH}", re.I),
    re.compile(rf"\b(?:at|of|before|after|since) (?:commit )?{HASH}", re.I),
    re.compile(rf"\({HASH}\b"),
    re.compile(r"\b(?:this|last|previous|next|two) rounds?\b", re.I),
    re.compile(r"\brounds? ago\b", re.I),
]


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_no_doc_names_a_commit_or_a_round(doc: Path) -> None:
    text = doc.read_text()
    found = [match.group(0) for pattern in HISTORY_NOTES for match in pattern.finditer(text)]
    # A hex word must contain a digit and a letter to look like a commit (not "deadbeef" or "1000000").
    found = [hit for hit in found if not re.search(HASH, hit) or _looks_like_a_commit(hit)]
    assert found == [], f"{doc.name} names commits or rounds (git log holds history): {found}"


def _looks_like_a_commit(hit: str) -> bool:
    return any(re.search(r"\d", word) and re.search(r"[a-f]", word) for word in re.findall(HASH, hit))


def test_the_commit_pattern_catches_what_the_readme_used_to_say() -> None:
    old = "`.ci/run` from a fresh clone of 2ddccdf: 304 passed; 930 s at c5ae3f4, (182f333: the merges); this round"
    found = [m.group(0) for p in HISTORY_NOTES for m in p.finditer(old)]
    assert {hit for hit in found if not re.search(HASH, hit) or _looks_like_a_commit(hit)} == {
        "fresh clone of 2ddccdf",
        "of 2ddccdf",
        "at c5ae3f4",
        "(182f333",
        "this round",
    }
    # Figures are not commits: no digit-and-letter hex word in them.
    figures = "after 1000000 s, of 2026 days"
    assert not [m for p in HISTORY_NOTES for m in p.finditer(figures) if _looks_like_a_commit(m[0])]
