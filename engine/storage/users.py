"""The SQL on user rows that task creation and the access checks need, through a lean ``Txn``."""

from __future__ import annotations

from engine.storage.txn import Txn


def manager_id(tx: Txn, user_id: int) -> int | None:
    """The user's manager in the org chart, active or not."""
    row = tx.one('SELECT manager_id FROM "user" WHERE id = ?', (user_id,))
    return None if row is None or row[0] is None else int(row[0])


def is_active(tx: Txn, user_id: int) -> bool:
    row = tx.one('SELECT active FROM "user" WHERE id = ?', (user_id,))
    return row is not None and bool(row[0])


def role_codes(tx: Txn, user_id: int) -> set[str]:
    return {
        str(row[0])
        for row in tx.all("SELECT role_code FROM user_role WHERE user_id = ?", (user_id,))
    }


def user_id(tx: Txn, username: str) -> int | None:
    """The id of the user with this username (active or not), or None."""
    row = tx.one('SELECT id FROM "user" WHERE username = ?', (username,))
    return None if row is None else int(row[0])
