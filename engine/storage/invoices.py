"""The SQL on the invoice register that the invoice operators need, through a lean ``Txn``."""

from __future__ import annotations

from datetime import datetime

from engine.storage.txn import Txn


def holder(tx: Txn, invoice_no: str) -> int | None:
    """The instance (expense claim) that holds an invoice number, or None."""
    row = tx.one("SELECT instance_id FROM invoice_register WHERE invoice_no = ?", (invoice_no,))
    return None if row is None else row[0]


def register(tx: Txn, invoice_no: str, instance_id: int, at: datetime) -> None:
    tx.execute(
        "INSERT INTO invoice_register (invoice_no, instance_id, registered_at) VALUES (?, ?, ?)",
        (invoice_no, instance_id, tx.when(at)),
    )


def held_by(tx: Txn, instance_id: int) -> list[str]:
    """The invoice numbers an instance holds, in order."""
    rows = tx.all(
        "SELECT invoice_no FROM invoice_register WHERE instance_id = ? ORDER BY invoice_no",
        (instance_id,),
    )
    return [row[0] for row in rows]


def release_all(tx: Txn, instance_id: int) -> None:
    """Give back every invoice number an instance holds."""
    tx.execute("DELETE FROM invoice_register WHERE instance_id = ?", (instance_id,))
