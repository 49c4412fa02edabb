"""The SQL on budget lines and their entries that the budget operators need, through a lean ``Txn``.

Amounts are decimal text. On PostgreSQL a line is read ``FOR UPDATE``, so two claims on one
line never both read the same totals (SQLite's ``BEGIN IMMEDIATE`` already serializes writers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from engine.storage.txn import Txn

_LINE = "SELECT id, amount, committed, spent FROM budget_line WHERE year = ? AND cost_center = ? AND category = ?"
_LOCK_LINE = _LINE + " FOR UPDATE"


@dataclass(frozen=True)
class LineTotals:
    id: int
    budget: Decimal
    committed: Decimal
    spent: Decimal


def locked_line(tx: Txn, year: int, cost_center: str, category: str) -> LineTotals | None:
    """The line's totals, locked until the transaction ends."""
    row = tx.one(_LINE if tx.sqlite else _LOCK_LINE, (year, cost_center, category))
    if row is None:
        return None
    return LineTotals(int(row[0]), Decimal(row[1]), Decimal(row[2]), Decimal(row[3]))


def claim_entries(tx: Txn, line_id: int, claim_ref: str) -> list[tuple[str, Decimal]]:
    """(kind, amount) of a claim's movements on the line, oldest first."""
    rows = tx.all(
        "SELECT kind, amount FROM budget_entry WHERE line_id = ? AND claim_ref = ? ORDER BY id",
        (line_id, claim_ref),
    )
    return [(kind, Decimal(amount)) for kind, amount in rows]


def add_entry(
    tx: Txn,
    line_id: int,
    kind: str,
    amount: Decimal,
    claim_ref: str,
    instance_id: int,
    at: datetime,
) -> None:
    tx.execute(
        "INSERT INTO budget_entry (line_id, kind, amount, claim_ref, instance_id, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (line_id, kind, str(amount), claim_ref, instance_id, tx.when(at)),
    )


def set_totals(tx: Txn, line_id: int, committed: Decimal, spent: Decimal, at: datetime) -> None:
    tx.execute(
        "UPDATE budget_line SET committed = ?, spent = ?, updated_at = ? WHERE id = ?",
        (str(committed), str(spent), tx.when(at), line_id),
    )
