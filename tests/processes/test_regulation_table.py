"""docs/regulation.md lists every clause of the regulation once, in order, with a quote taken from
that clause, and every file it names exists (a diagram still being written is listed under
"Pending diagrams" instead, and must leave that list once it lands)."""

from __future__ import annotations

import re

import pytest

from engine.config import PROJECT_ROOT
from engine.definitions.regulation import table_rows

REGULATION = PROJECT_ROOT.parent / "shared" / "domain" / "regulation.zh.md"
TABLE = PROJECT_ROOT / "docs" / "regulation.md"

# The regulation's numbering: "## 一、总则" chapters, "### (一)目的" sections, "1.…" items.
# A section with items is cited by its items (三(一)1), a section without them by itself (一(一)).
CHAPTER = re.compile(r"^## ([一二三四五六七八九十]+)、")
SECTION = re.compile(r"^### (\([一二三四五六七八九十]+\))")
ITEM = re.compile(r"^(\d+)\.")
# A file named in the table, in backticks, with an optional BPMN element id: `processes/x.bpmn#id`.
FILE_REF = re.compile(r"`((?:engine|forms|processes)/[\w/.-]+?\.(?:py|json|bpmn|dmn))(?:#(\w+))?`")
PENDING = re.compile(r"^- `(processes/\w+\.bpmn)`")


def regulation_clauses() -> dict[str, str]:
    """Clause number → its text, in the regulation's order."""
    clauses: dict[str, str] = {}
    chapter = section = current = ""
    for line in REGULATION.read_text(encoding="utf-8").splitlines():
        if match := CHAPTER.match(line):
            chapter, current = match.group(1), ""
        elif match := SECTION.match(line):
            section = match.group(1)
            current = chapter + section
            clauses[current] = ""
        elif match := ITEM.match(line):
            if clauses.get(chapter + section) == "":  # the section has items: cite those instead
                del clauses[chapter + section]
            current = chapter + section + match.group(1)
            clauses[current] = line
        elif current and line.strip():
            clauses[current] += line
    return clauses


def pending_diagrams() -> set[str]:
    text = TABLE.read_text(encoding="utf-8").split("## Pending diagrams", 1)[1].split("\n## ", 1)[0]
    return {match.group(1) for line in text.splitlines() if (match := PENDING.match(line))}


def test_the_regulation_numbering_is_read() -> None:
    clauses = list(regulation_clauses())
    assert clauses[:3] == ["一(一)", "一(二)", "一(三)1"]
    assert "二(一)" in clauses  # a section without items
    assert "二(二)5" in clauses
    assert clauses[-1] == "七(三)2"  # the text breaks off inside this item
    assert len(clauses) == 60


def test_every_clause_appears_once_in_order() -> None:
    assert [row[0] for row in table_rows()] == list(regulation_clauses())


@pytest.mark.parametrize("row", table_rows(), ids=lambda row: row[0])
def test_row_quotes_its_clause_and_says_what_serves_it(row: list[str]) -> None:
    clause, quote, served_by, _notes = row
    assert quote, f"{clause}: no quote"
    assert quote in regulation_clauses()[clause], f"{clause}: quote not in the clause"
    assert served_by, f"{clause}: the served-by cell is empty"


def test_every_named_file_exists_or_is_pending() -> None:
    pending = pending_diagrams()
    problems = []
    for row in table_rows():
        for path, element_id in FILE_REF.findall(row[2]):
            if path in pending:
                continue
            file = PROJECT_ROOT / path
            if not file.is_file():
                problems.append(f"{row[0]}: {path} does not exist (list it as pending?)")
            elif element_id and f'id="{element_id}"' not in file.read_text(encoding="utf-8"):
                problems.append(f"{row[0]}: {path} has no element {element_id}")
    assert not problems, "\n".join(problems)


def test_pending_diagrams_have_not_landed_yet() -> None:
    landed = sorted(path for path in pending_diagrams() if (PROJECT_ROOT / path).is_file())
    assert not landed, (
        f"{landed} exist now: remove them from 'Pending diagrams' in docs/regulation.md and name "
        "their task ids (processes/<key>.bpmn#<id>) in place of the 「spec names」"
    )
