"""The invoice register: an invoice number serves one expense claim, system-wide (P6 step 2).

A claim registers its invoice numbers when it is checked; numbers another claim already holds
come back as duplicates, and the diagram sends the claim back to the applicant. A revised claim
replaces its numbers; a withdrawn one gives them back; a paid one keeps them for good.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.case_files import Call, operator
from engine.errors import InvalidInputError
from engine.timekeeping import clock


def _numbers(invoices: Any) -> list[str]:
    if not isinstance(invoices, list) or not all(
        isinstance(row, Mapping) and str(row.get("invoice_no") or "").strip() for row in invoices
    ):
        raise InvalidInputError("invoices 须为含发票号的行 / invoices must be rows with invoice_no")
    return sorted({str(row["invoice_no"]).strip() for row in invoices})


@operator("invoice_register", required=("invoices",))
def invoice_register(call: Call, invoices: list[Mapping[str, Any]]) -> dict[str, Any]:
    numbers = _numbers(invoices)
    tx = call.tx
    tx.execute("DELETE FROM invoice_register WHERE instance_id = ?", (call.instance_id,))
    duplicates, registered = [], []
    for number in numbers:
        held = tx.one("SELECT instance_id FROM invoice_register WHERE invoice_no = ?", (number,))
        if held is not None:
            duplicates.append(number)
            continue
        tx.execute(
            "INSERT INTO invoice_register (invoice_no, instance_id, registered_at) VALUES (?, ?, ?)",
            (number, call.instance_id, tx.when(clock.now())),
        )
        registered.append(number)
    return {"registered": registered, "duplicates": duplicates}


@operator("invoice_release", required=())
def invoice_release(call: Call) -> dict[str, Any]:
    released = [
        row[0]
        for row in call.tx.all(
            "SELECT invoice_no FROM invoice_register WHERE instance_id = ? ORDER BY invoice_no",
            (call.instance_id,),
        )
    ]
    call.tx.execute("DELETE FROM invoice_register WHERE instance_id = ?", (call.instance_id,))
    return {"released": released}
