"""Which clauses of the department regulation each process serves, read from docs/regulation.md.

The clause table there is the one place the mapping is written (tests/processes/test_regulation_table.py
checks it against the regulation): a row serves process ``key`` when its "served by" cell names
``processes/<key>.bpmn``. Read once per file version (its modification time).
"""

from __future__ import annotations

import functools
import pathlib
import re
from dataclasses import dataclass
from typing import Final

from engine.config import PROJECT_ROOT

TABLE: Final = PROJECT_ROOT / "docs" / "regulation.md"
_PROCESS_REF: Final = re.compile(r"`processes/(\w+)\.bpmn(?:#\w+)?`")


@dataclass(frozen=True)
class Clause:
    """One clause: its number (三(三)1) and the regulation's words the table quotes from it."""

    number: str
    quote: str


def table_rows(path: pathlib.Path = TABLE) -> list[list[str]]:
    """The clause table's rows as cells: clause, quote, served by, notes."""
    text = path.read_text(encoding="utf-8").split("## Clause table", 1)[1]
    rows = [
        line.strip().strip("|").split("|") for line in text.splitlines() if line.startswith("|")
    ]
    return [[cell.strip() for cell in row] for row in rows[2:]]  # skip header and separator


def clauses_of(key: str, path: pathlib.Path = TABLE) -> tuple[Clause, ...]:
    """The clauses process ``key`` serves, in the regulation's order."""
    return _by_process(path, path.stat().st_mtime_ns).get(key, ())


@functools.lru_cache(maxsize=4)
def _by_process(path: pathlib.Path, mtime: int) -> dict[str, tuple[Clause, ...]]:
    found: dict[str, list[Clause]] = {}
    for number, quote, served_by, *_notes in table_rows(path):
        for key in dict.fromkeys(_PROCESS_REF.findall(served_by)):
            found.setdefault(key, []).append(Clause(number, quote))
    return {key: tuple(clauses) for key, clauses in found.items()}
