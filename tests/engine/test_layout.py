"""The code's shape: rules about where things live, checked over the source."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "engine"
STORAGE = ENGINE / "storage"  # its migrations included
# a statement, not a word: "Select one of the choices." and the budget entry kind "release" are not SQL
SQL = re.compile(
    r"\s*(SELECT\s.*\bFROM\s|SELECT\s+\w+\s*$|INSERT\s+INTO\s|UPDATE\s+\S+\s+SET\s|DELETE\s+FROM\s"
    r"|SAVEPOINT\s|RELEASE\s+SAVEPOINT\s|ROLLBACK(\s+TO\s|\s*$)|BEGIN(\s+\w+)?\s*$)",
    re.IGNORECASE | re.DOTALL,
)


def _sql_strings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        f"{path.relative_to(ENGINE.parent)}:{node.lineno}: {node.value.strip()[:60]}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value)
    ]


def test_hand_written_sql_lives_only_in_storage() -> None:
    outside = [
        found
        for path in sorted(ENGINE.rglob("*.py"))
        if not path.is_relative_to(STORAGE)
        for found in _sql_strings(path)
    ]
    assert outside == []


@pytest.mark.parametrize(
    "text",
    [
        "SELECT id FROM customer WHERE customer_no = ?",
        "\n  select 1 from policy",
        "SELECT 1",
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, ?)",
        "UPDATE human_task SET paused_at = ? WHERE instance_id = ? AND status = '",
        "DELETE FROM invoice_register WHERE instance_id = ?",
        "SAVEPOINT opsflow_operator",
        "RELEASE SAVEPOINT opsflow_operator",
        "ROLLBACK TO SAVEPOINT opsflow_operator",
        "ROLLBACK",
        "BEGIN IMMEDIATE",
    ],
)
def test_the_sql_check_knows_a_statement(text: str) -> None:
    assert SQL.match(text)


@pytest.mark.parametrize(
    "text", ["Select one of the choices.", "release", "Update the draft", "begin the review now"]
)
def test_the_sql_check_leaves_words_alone(text: str) -> None:
    assert not SQL.match(text)
