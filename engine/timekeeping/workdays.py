"""Working days (PRC holidays and make-up working days) and deadlines.

Time zone: business dates are evaluated in China Standard Time through ``CHINA_TZ``,
a *fixed* UTC+08:00 offset (``datetime.timezone``), not ``zoneinfo``. Mainland China has
had no daylight saving time since 1991, so the fixed offset is exact for every date the
holiday calendar covers, needs no tzdata package, and keeps timedelta arithmetic exact
(an aware datetime in a DST zone adds wall-clock time, not elapsed time).

Two ways of counting, because the rules differ:

* working days (工作日): Monday–Friday, minus the PRC public holidays, plus the
  weekend make-up working days (调休上班). The official arrangement is published yearly by
  the State Council and encoded by the ``chinesecalendar`` package; for a year outside its
  data (see ``calendar_covers``) we fall back to plain Monday–Friday and log a warning once
  per year.
* calendar days (日, 自然日): every day counts.

Deadline convention (both kinds): the day of ``start`` is not counted; counting begins the
next day, and the deadline is the END of the last counted day, 23:59:59.999999 China time,
returned timezone-aware in ``CHINA_TZ`` ("以内" includes the boundary day). With ``n = 0``
the deadline is the end of the start day itself (for working days: if it is a working day,
otherwise the end of the next working day).
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from datetime import MAXYEAR, MINYEAR, date, datetime, time, timedelta, timezone
from typing import Literal

import chinese_calendar

from engine.errors import InvalidInputError

__all__ = [
    "CHINA_TZ",
    "MAX_DEADLINE_DAYS",
    "DeadlineUnit",
    "add_calendar_days",
    "add_workdays",
    "calendar_covers",
    "deadline_from",
    "end_of_day",
    "is_workday",
    "parse_deadline_spec",
    "workdays_between",
]

logger = logging.getLogger(__name__)

CHINA_TZ = timezone(timedelta(hours=8), "UTC+08:00")
"""China Standard Time as a fixed offset (no DST in mainland China since 1991)."""

MAX_DEADLINE_DAYS = 3660
"""Upper bound for ``n`` in day/working-day counts (about ten years): guards against typos
such as "50000 workdays" in a diagram turning into a near-endless loop."""

DeadlineUnit = Literal["workdays", "days", "hours"]


# --- time-zone helpers -------------------------------------------------------------------


def _require_aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(
            f"{what} 需要带时区的时间 / {what} must be a timezone-aware datetime, got {value!r}"
        )
    return value


def _china(value: datetime, what: str) -> datetime:
    return _require_aware(value, what).astimezone(CHINA_TZ)


def _business_date(day: date, what: str) -> date:
    """A plain date as is; an aware datetime as its date in China time."""
    if isinstance(day, datetime):
        return _china(day, what).date()
    return day


def end_of_day(day: date) -> datetime:
    """23:59:59.999999 China time on ``day``, timezone-aware."""
    return datetime.combine(day, time.max, tzinfo=CHINA_TZ)


# --- the calendar ------------------------------------------------------------------------


@functools.cache
def calendar_covers(year: int) -> bool:
    """Whether the installed official holiday data covers ``year``.

    When it does not, ``is_workday`` treats that year as plain Monday–Friday.
    """
    if not MINYEAR <= year <= MAXYEAR:
        return False
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


@functools.cache
def _warn_fallback(year: int) -> None:
    logger.warning(
        "节假日数据不含 %d 年，按周一至周五计算工作日 / no PRC holiday data for %d, "
        "falling back to Monday-Friday working days",
        year,
        year,
    )


def is_workday(day: date) -> bool:
    """Whether ``day`` is a PRC working day (holidays off, 调休 make-up weekend days on).

    An aware ``datetime`` is accepted and judged by its date in China time.
    """
    day = _business_date(day, "day")
    if calendar_covers(day.year):
        return bool(chinese_calendar.is_workday(day))
    _warn_fallback(day.year)
    return day.weekday() < 5


def _check_count(n: int, what: str) -> None:
    if not 0 <= n <= MAX_DEADLINE_DAYS:
        raise InvalidInputError(
            f"{what} 须在 0 到 {MAX_DEADLINE_DAYS} 之间 / {what} must be between 0 and "
            f"{MAX_DEADLINE_DAYS}, got {n}"
        )


def _nth_workday_after(day: date, n: int) -> date:
    """The n-th working day after ``day`` (``day`` itself not counted; n >= 1)."""
    counted = 0
    while counted < n:
        day += timedelta(days=1)
        if is_workday(day):
            counted += 1
    return day


def add_workdays(start: datetime, n: int) -> datetime:
    """The deadline ``n`` working days after ``start``: end of that working day, China time.

    Counting starts with the next working day after the start date. ``n = 0`` gives the end
    of the start day if it is a working day, otherwise the end of the next working day.
    """
    _check_count(n, "工作日数 / number of working days")
    day = _china(start, "start").date()
    if n == 0:
        return end_of_day(day if is_workday(day) else _nth_workday_after(day, 1))
    return end_of_day(_nth_workday_after(day, n))


def add_calendar_days(start: datetime, n: int) -> datetime:
    """The deadline ``n`` calendar days after ``start``: end of that day, China time.

    The start day is not counted ("日" = calendar day; "以内" includes the last day), so a
    15-day deadline for something received on 1 April ends at 23:59:59.999999 on 16 April.
    ``n = 0`` gives the end of the start day.
    """
    _check_count(n, "天数 / number of days")
    return end_of_day(_china(start, "start").date() + timedelta(days=n))


def workdays_between(a: date, b: date) -> int:
    """Working days ``d`` with ``a < d <= b`` (negative when ``b`` is before ``a``).

    This is the inverse of ``add_workdays`` for n >= 1:
    ``workdays_between(s, add_workdays(s, n).date()) == n``. Aware datetimes are accepted
    and reduced to their China date.
    """
    first = _business_date(a, "a")
    last = _business_date(b, "b")
    if last < first:
        return -workdays_between(last, first)
    return sum(1 for k in range(1, (last - first).days + 1) if is_workday(first + timedelta(k)))


# --- deadline specs from BPMN task properties ---------------------------------------------

_UNITS: dict[str, DeadlineUnit] = {
    "workday": "workdays",
    "workdays": "workdays",
    "working day": "workdays",
    "working days": "workdays",
    "business day": "workdays",
    "business days": "workdays",
    "工作日": "workdays",
    "个工作日": "workdays",
    "day": "days",
    "days": "days",
    "calendar day": "days",
    "calendar days": "days",
    "日": "days",
    "天": "days",
    "自然日": "days",
    "个自然日": "days",
    "hour": "hours",
    "hours": "hours",
    "小时": "hours",
    "个小时": "hours",
}

_SPEC = re.compile(r"(?P<n>[0-9]+)\s*(?P<unit>[^\s0-9].*?)")


def _bad_spec(spec: str, reason: str) -> InvalidInputError:
    return InvalidInputError(
        f"无法识别的期限 {spec!r}（{reason}），应写作“5 工作日”“15 日”“48 小时” / "
        f"unrecognised deadline {spec!r} ({reason}); write e.g. "
        f"'5 workdays', '15 days' or '48 hours'"
    )


def parse_deadline_spec(spec: str) -> tuple[int, DeadlineUnit]:
    """Parse a deadline written in a BPMN task property: "5 workdays", "5 工作日",
    "15 days", "15 日", "48 hours", "48 小时" (whitespace optional, case-insensitive;
    full-width digits and spaces are accepted).

    Raises ``InvalidInputError`` for anything else (negative numbers, Chinese numerals,
    unknown units, a number out of range).
    """
    match = _SPEC.fullmatch(unicodedata.normalize("NFKC", spec).strip())
    if match is None:
        raise _bad_spec(spec, "须为“数字 + 单位” / must be a number followed by a unit")
    unit = _UNITS.get(" ".join(match["unit"].lower().split()))
    if unit is None:
        raise _bad_spec(spec, f"未知单位 / unknown unit {match['unit']!r}")
    n = int(match["n"])
    limit = MAX_DEADLINE_DAYS * 24 if unit == "hours" else MAX_DEADLINE_DAYS
    if n > limit:
        raise _bad_spec(spec, f"数值过大 / at most {limit}")
    return n, unit


def deadline_from(start: datetime, spec: str) -> datetime:
    """The deadline for ``spec`` counted from ``start``, in China time.

    Working days and calendar days follow the end-of-day convention; hours are a plain
    elapsed-time offset with no rounding.
    """
    n, unit = parse_deadline_spec(spec)
    if unit == "workdays":
        return add_workdays(start, n)
    if unit == "days":
        return add_calendar_days(start, n)
    return _china(start, "start") + timedelta(hours=n)
