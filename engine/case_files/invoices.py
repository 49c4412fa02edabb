"""The invoice register: an invoice number serves one expense claim, system-wide (P6 step 2).

A claim registers its invoice numbers when it is checked; numbers another claim already holds
come back as duplicates, and the diagram sends the claim back to the applicant. A revised claim
replaces its numbers; a withdrawn one gives them back; a paid one keeps them for good.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.case_files.operators import Call, operator
from engine.errors import InvalidInputError
from engine.storage import invoices as invoice_rows
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
    invoice_rows.release_all(tx, call.instance_id)
    duplicates, registered = [], []
    for number in numbers:
        if invoice_rows.holder(tx, number) is not None:
            duplicates.append(number)
            continue
        invoice_rows.register(tx, number, call.instance_id, clock.now())
        registered.append(number)
    return {"registered": registered, "duplicates": duplicates}


@operator("invoice_release", required=())
def invoice_release(call: Call) -> dict[str, Any]:
    released = invoice_rows.held_by(call.tx, call.instance_id)
    invoice_rows.release_all(call.tx, call.instance_id)
    return {"released": released}
