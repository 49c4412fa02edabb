"""The SQL on the archive catalogue and its holds that the archive operators need, through a lean ``Txn``.

Dates (``retention_until``) are ISO text; on PostgreSQL the items a hold or a destruction is
about are locked with ``FOR UPDATE`` first (SQLite's ``BEGIN IMMEDIATE`` already serializes
writers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.storage.txn import Txn


@dataclass(frozen=True)
class ArchiveItemRow:
    """An item of the catalogue as the operators show it."""

    archive_no: str
    category: str
    title: str
    related_ref: str | None
    retention_until: str | None
    permanent: bool
    media: str | None
    location: str | None


@dataclass(frozen=True)
class ArchiveItemState:
    item: ArchiveItemRow
    destroyed: bool
    held: bool  # an unreleased hold on the item's reference


_ITEM_COLUMNS = (
    "archive_no, category, title, related_ref, retention_until, permanent, media, location"
)
_ITEM_STATE = (
    f"SELECT {_ITEM_COLUMNS}, destroyed_at, EXISTS (SELECT 1 FROM archive_hold h"
    " WHERE h.related_ref = archive_item.related_ref AND h.released_at IS NULL)"
    " FROM archive_item WHERE archive_no = ?"
)


def _item(row: Any) -> ArchiveItemRow:
    values = list(row[:8])
    values[5] = bool(values[5])
    return ArchiveItemRow(*values)


def item_exists(tx: Txn, archive_no: str) -> bool:
    return tx.one("SELECT 1 FROM archive_item WHERE archive_no = ?", (archive_no,)) is not None


@dataclass(frozen=True)
class NewArchiveItem:
    archive_no: str
    category: str
    title: str
    related_ref: str | None
    retention_until: str | None
    permanent: bool
    media: str | None
    location: str | None
    filed_by_instance: int
    registered_at: datetime


def insert_item(tx: Txn, new: NewArchiveItem) -> None:
    tx.execute(
        "INSERT INTO archive_item (archive_no, category, title, related_ref, retention_until,"
        " permanent, media, location, filed_by_instance, registered_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new.archive_no, new.category, new.title, new.related_ref, new.retention_until,
            new.permanent, new.media, new.location, new.filed_by_instance,
            tx.when(new.registered_at),
        ),
    )  # fmt: skip


def lock_items_under(tx: Txn, related_ref: str) -> None:
    """Lock every item filed under a reference (PostgreSQL)."""
    if not tx.sqlite:
        tx.all(
            "SELECT archive_no FROM archive_item WHERE related_ref = ? FOR UPDATE", (related_ref,)
        )


def lock_items(tx: Txn, archive_nos: list[str]) -> None:
    """Lock the named items, one by one in the given order (PostgreSQL)."""
    if not tx.sqlite:
        for archive_no in archive_nos:
            tx.one(
                "SELECT archive_no FROM archive_item WHERE archive_no = ? FOR UPDATE", (archive_no,)
            )


def kept_under(tx: Txn, related_ref: str) -> list[str]:
    """The archive numbers of the items filed under a reference and not destroyed."""
    rows = tx.all(
        "SELECT archive_no FROM archive_item WHERE related_ref = ? AND destroyed_at IS NULL"
        " ORDER BY archive_no",
        (related_ref,),
    )
    return [row[0] for row in rows]


def insert_hold(
    tx: Txn, related_ref: str, case_ref: str, reason: str, placed_at: datetime, instance_id: int
) -> None:
    tx.execute(
        "INSERT INTO archive_hold (related_ref, case_ref, reason, placed_at, placed_by_instance)"
        " VALUES (?, ?, ?, ?, ?)",
        (related_ref, case_ref, reason, tx.when(placed_at), instance_id),
    )


def release_holds(tx: Txn, related_ref: str, case_ref: str, released_at: datetime) -> None:
    """Release the case's open holds on a reference."""
    tx.execute(
        "UPDATE archive_hold SET released_at = ? WHERE related_ref = ? AND case_ref = ?"
        " AND released_at IS NULL",
        (tx.when(released_at), related_ref, case_ref),
    )


def keep_until(tx: Txn, related_ref: str, kept_until: str) -> None:
    """Items under a reference that are kept for a time (and still there) stay until at least then."""
    tx.execute(
        "UPDATE archive_item SET retention_until = ? WHERE related_ref = ? AND permanent = ?"
        " AND destroyed_at IS NULL AND retention_until IS NOT NULL AND retention_until < ?",
        (kept_until, related_ref, False, kept_until),
    )


def destruction_candidates(tx: Txn, day: str | None) -> list[ArchiveItemRow]:
    """Items kept for a time that ran out before ``day``, neither destroyed nor held."""
    rows = tx.all(
        f"SELECT {_ITEM_COLUMNS} FROM archive_item WHERE destroyed_at IS NULL AND permanent = ?"
        " AND retention_until IS NOT NULL AND retention_until < ? AND NOT EXISTS (SELECT 1"
        " FROM archive_hold h WHERE h.related_ref = archive_item.related_ref"
        " AND h.released_at IS NULL) ORDER BY archive_no",
        (False, day),
    )
    return [_item(row) for row in rows]


def item_state(tx: Txn, archive_no: str) -> ArchiveItemState | None:
    row = tx.one(_ITEM_STATE, (archive_no,))
    if row is None:
        return None
    return ArchiveItemState(_item(row), row[-2] is not None, bool(row[-1]))


def destroy_item(tx: Txn, archive_no: str, destroyed_at: datetime, instance_id: int) -> None:
    tx.execute(
        "UPDATE archive_item SET destroyed_at = ?, destroyed_by_instance = ? WHERE archive_no = ?",
        (tx.when(destroyed_at), instance_id, archive_no),
    )
