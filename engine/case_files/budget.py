"""The expense budget ledger (六(一)、六(二); R15): lines per year × cost centre × category.

``available = budget − committed − spent``. An expense claim's budget check commits its amount
(a resubmission replaces the claim's commitment, so revisions never count twice); payment turns
the commitment into spending; a withdrawn claim releases it. Each movement is a ``budget_entry``
row besides the audited operator call. The annual budget process (P7) will own setting the lines;
until then ``set_line`` loads them (demo data, tests).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.case_files.operators import Call, operator
from engine.errors import InvalidInputError, NotFoundError
from engine.storage import budget as budget_rows
from engine.storage.models import BudgetLine
from engine.timekeeping import clock


def _money(value: Any, what: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInputError(f"{what} 不是金额 / {what} is not an amount: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise InvalidInputError(f"{what} 须为非负金额 / {what} must be a non-negative amount")
    return amount.quantize(Decimal("0.01"))


def _year(value: Any) -> int:
    text = str(value)[:4]
    if not text.isdigit():
        raise InvalidInputError(f"年度无效 / not a year: {value!r}")
    return int(text)


def _line(
    call: Call, year: Any, cost_center: str, category: str
) -> tuple[int, Decimal, Decimal, Decimal] | None:
    # two claims on one line must not both read the same totals
    line = budget_rows.locked_line(call.tx, _year(year), str(cost_center), str(category))
    if line is None:
        return None
    return line.id, line.budget, line.committed, line.spent


def _snapshot(
    budget: Decimal, committed: Decimal, spent: Decimal, amount: Decimal
) -> dict[str, Any]:
    available = budget - committed - spent
    return {
        "budget": str(budget),
        "committed": str(committed),
        "spent": str(spent),
        "available": str(available),
        "within_budget": amount <= available,
    }


def _claim_commitment(call: Call, line_id: int, claim_ref: str) -> Decimal:
    """What this claim has committed on the line and not yet spent or released."""
    total = Decimal("0")
    for kind, amount in budget_rows.claim_entries(call.tx, line_id, claim_ref):
        total += amount if kind == "commit" else -amount
    return total


def _claim(call: Call) -> str:
    """The claim a movement belongs to: the expense case itself."""
    return f"case:{call.instance_id}"


def _entry(call: Call, line_id: int, kind: str, amount: Decimal, claim_ref: str) -> None:
    budget_rows.add_entry(call.tx, line_id, kind, amount, claim_ref, call.instance_id, clock.now())


def _move(call: Call, line_id: int, committed: Decimal, spent: Decimal) -> None:
    budget_rows.set_totals(call.tx, line_id, committed, spent, clock.now())


@operator("budget_check", required=("cost_center", "category", "year", "amount"))
def budget_check(
    call: Call, cost_center: str, category: str, year: Any, amount: Any
) -> dict[str, Any]:
    """The line's snapshot before this claim; a claim within it commits its amount."""
    money = _money(amount, "amount")
    line = _line(call, year, cost_center, category)
    if line is None:  # no budget line: everything is outside the budget (预算外)
        return _snapshot(Decimal(0), Decimal(0), Decimal(0), money) | {"line": None}
    line_id, budget, committed, spent = line
    previous = _claim_commitment(call, line_id, _claim(call))
    if previous:  # a resubmission: the old amount no longer counts
        _entry(call, line_id, "release", previous, _claim(call))
        committed -= previous
    snapshot = _snapshot(budget, committed, spent, money)
    _entry(call, line_id, "commit", money, _claim(call))
    _move(call, line_id, committed + money, spent)
    return snapshot | {"line": line_id}


@operator("budget_spend", required=("cost_center", "category", "year", "amount"))
def budget_spend(
    call: Call, cost_center: str, category: str, year: Any, amount: Any
) -> dict[str, Any]:
    """Payment: the claim's commitment becomes spending."""
    money = _money(amount, "amount")
    line = _line(call, year, cost_center, category)
    if line is None:
        return {"spent": str(money), "line": None}
    line_id, budget, committed, spent = line
    held = _claim_commitment(call, line_id, _claim(call))
    if held:
        _entry(call, line_id, "release", held, _claim(call))
    _entry(call, line_id, "spend", money, _claim(call))
    _move(call, line_id, committed - held, spent + money)
    return {"spent": str(money), "line": line_id} | {
        "available_after": str(budget - (committed - held) - (spent + money))
    }


@operator("budget_release", required=("cost_center", "category", "year"))
def budget_release(call: Call, cost_center: str, category: str, year: Any) -> dict[str, Any]:
    """A withdrawn claim gives its commitment back."""
    line = _line(call, year, cost_center, category)
    if line is None:
        return {"released": "0.00"}
    line_id, _budget, committed, spent = line
    held = _claim_commitment(call, line_id, _claim(call))
    if held:
        _entry(call, line_id, "release", held, _claim(call))
        _move(call, line_id, committed - held, spent)
    return {"released": str(held)}


def _find_line(session: Session, year: int, cost_center: str, category: str) -> BudgetLine | None:
    return session.scalar(
        select(BudgetLine).where(
            BudgetLine.year == year,
            BudgetLine.cost_center == cost_center,
            BudgetLine.category == category,
        )
    )


def set_line(
    session: Session, year: int, cost_center: str, category: str, amount: str, spent: str = "0.00"
) -> None:
    """Create or reset a budget line (until P7 approves budgets through a process)."""
    line = _find_line(session, year, cost_center, category)
    if line is None:
        line = BudgetLine(year=year, cost_center=cost_center, category=category, committed="0.00")
        session.add(line)
    line.amount = str(_money(amount, "amount"))
    line.spent = str(_money(spent, "spent"))
    line.updated_at = clock.now()
    session.flush()


def load_demo(session: Session, path: Path) -> None:
    """The demo budget lines from a JSON file's ``budget_lines``; existing lines are left alone."""
    for entry in json.loads(path.read_text(encoding="utf-8")).get("budget_lines", []):
        if _find_line(session, entry["year"], entry["cost_center"], entry["category"]) is None:
            set_line(session, **entry)


def line_of(session: Session, year: int, cost_center: str, category: str) -> BudgetLine:
    """:raise NotFoundError:"""
    line = _find_line(session, year, cost_center, category)
    if line is None:
        raise NotFoundError(f"没有预算科目 / no budget line {year} {cost_center} {category}")
    return line
