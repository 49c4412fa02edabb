"""The SQL of the audit chain's lean writer: its head row and the batched events, through a ``Txn``.

The head is read ``FOR UPDATE`` on PostgreSQL so the chain never forks (SQLite serializes
writers with ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.storage.txn import Txn

_READ_HEAD = "SELECT seq, hash FROM audit_head WHERE id = 1"
_LOCK_HEAD = "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"
_INSERT_EVENTS = (
    "INSERT INTO audit_event (seq, at, actor, instance_id, task_id, type, payload, prev_hash, hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def locked_head(tx: Txn, genesis: str) -> tuple[int, str]:
    """(seq, hash) of the chain's head, locked until the transaction ends.

    An empty chain's head (seq 0, ``genesis``) is created first, unless another writer just did.
    """
    query = _READ_HEAD if tx.sqlite else _LOCK_HEAD
    row = tx.one(query)
    if row is None:
        tx.execute(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, ?) ON CONFLICT (id) DO NOTHING",
            (genesis,),
        )
        row = tx.one(query)
    return int(row[0]), str(row[1])


def insert_events(tx: Txn, rows: Sequence[Sequence[Any]]) -> None:
    """Events as (seq, at, actor, instance_id, task_id, type, payload, prev_hash, hash)."""
    tx.executemany(_INSERT_EVENTS, rows)


def move_head(tx: Txn, seq: int, hash: str) -> None:
    tx.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, hash))
