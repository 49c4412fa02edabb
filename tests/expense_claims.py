"""A valid expense claim (P6), the data most engine tests push through a real process."""

from __future__ import annotations

import itertools
from typing import Any

# every claim carries its own invoice number: the register refuses one invoice in two claims
_NUMBERS = itertools.count(1)

# a day within the claim form's 90-day window of the tests' frozen "today" (2026-03-02)
FROZEN_DAY = "2026-02-26"


def claim_data(
    amount: str = "800.00", category: str = "办公", day: str = FROZEN_DAY, **changes: object
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "cost_center": "运营部",
        "category": category,
        "amount": amount,
        "incurred_date": day,
        "purpose": "赴上海参加保险公司产品培训的差旅费用",
        "invoices": [{"invoice_no": f"INV-{next(_NUMBERS):05d}", "date": day, "amount": amount}],
        "attachments": ["ab" * 32],
        "payee_account": "6222020200112233445",
    }
    data.update(changes)
    return data
