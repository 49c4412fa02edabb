"""The dates, deadlines and money helpers diagram scripts call by name (the sandbox hands them in).

Dates arrive as forms store them, ISO strings ("2026-04-01", "2026-04-01T10:00:00+08:00"), and
the helpers that make dates hand back ISO strings too, so their results can be stored in task
data, compared with other ISO strings of the same form and used as timer expressions.

``now()`` and ``today()`` read the engine clock (``engine.timekeeping.clock``): the one "now" every service
uses and tests move. Python's own ``datetime.now()`` stays forbidden in scripts.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from engine.timekeeping import clock, workdays

_CENT: Final = Decimal("0.01")


def quantize2(value: Decimal | int | float | str) -> Decimal:
    """Money: ``value`` as a Decimal rounded half-up to two places (2.675 -> 2.68).

    Floats go through ``str`` so ``quantize2(2.675)`` is 2.68, not the binary 2.67.
    """
    if isinstance(value, bool):
        raise TypeError("quantize2() needs a number or a numeric string, not a bool")
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return _as_date(datetime.fromisoformat(value.strip()))
    raise TypeError(f"expected a date or an ISO date string, not {type(value).__name__}")


def _as_datetime(value: date | str) -> datetime:
    """An aware datetime; a date (or date string) is the start of that day, China time."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=workdays.CHINA_TZ)
    if isinstance(value, date):
        return datetime.combine(value, time(), workdays.CHINA_TZ)
    raise TypeError(f"expected a date, a datetime or an ISO string, not {type(value).__name__}")


def _whole_number(n: object, helper: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{helper}() needs a whole number of days, not {type(n).__name__}")
    return n


def days_between(start: date | str, end: date | str) -> int:
    """Whole calendar days from ``start`` to ``end`` (negative if ``end`` is earlier).

    Accepts dates, datetimes (their date part counts) and ISO strings such as
    ``"2024-05-01"``, which is how forms store dates in task data.
    """
    return (_as_date(end) - _as_date(start)).days


def add_days(day: date | str, days: int) -> date:
    """``day`` plus ``days`` calendar days (negative goes back); a datetime stays a datetime."""
    _whole_number(days, "add_days")
    start = day if isinstance(day, date) else _as_date(day)
    return start + timedelta(days=days)


def add_workdays(day: date | str, n: int) -> str:
    """The ISO date of the ``n``-th PRC working day after ``day`` (``day`` itself not counted)."""
    _whole_number(n, "add_workdays")
    return workdays.add_workdays(_as_datetime(_as_date(day)), n).date().isoformat()


def deadline(start: date | str, spec: str) -> str:
    """The deadline ``spec`` ("15 days", "5 workdays", "48 hours") counted from ``start``.

    An ISO datetime string in China time; day and working-day deadlines end at the end of
    their last day: ``deadline("2026-04-01", "15 days")`` is
    ``"2026-04-16T23:59:59.999999+08:00"``.
    """
    if not isinstance(spec, str):
        raise TypeError(
            f"deadline() needs a text spec such as '15 days', not {type(spec).__name__}"
        )
    return workdays.deadline_from(_as_datetime(start), spec).isoformat()


def sha256_json(value: object) -> str:
    """The SHA-256 of ``value`` as canonical JSON (sorted keys, no spaces, UTF-8; dates and
    decimals as text): a fingerprint of a list or record that any copy can be checked against."""
    text = json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_json_text
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _json_text(value: object) -> str:
    if isinstance(value, date | Decimal):
        return value.isoformat() if isinstance(value, date) else format(value, "f")
    raise TypeError(f"sha256_json() cannot fingerprint a {type(value).__name__}")


def now() -> str:
    """The engine clock's current time, ISO in China time."""
    return clock.now().astimezone(workdays.CHINA_TZ).isoformat()


def today() -> str:
    """The engine clock's current date in China, ISO."""
    return clock.now().astimezone(workdays.CHINA_TZ).date().isoformat()
