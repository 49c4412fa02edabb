"""Periodic starts of a process (a timer start event's ``R[n]/start/period``), registered at deploy.

Calendar arithmetic for the cycles: SpiffWorkflow turns P1M into a fixed 31 days; here months
follow the calendar (31 Jan → 28 Feb → 31 Mar).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from engine import sandbox
from engine.errors import InvalidDefinitionError
from engine.storage.models import PeriodicStart
from engine.timekeeping import clock

_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


@dataclass(frozen=True)
class Period:
    months: int
    delta: timedelta

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _DURATION.match(text.strip().upper())
        if not match or text.strip().upper() in ("P", "PT"):
            raise InvalidDefinitionError(f"无法识别的周期 / not an ISO 8601 duration: {text}")
        parts = {k: int(v) for k, v in match.groupdict().items() if v}
        delta = timedelta(
            weeks=parts.get("weeks", 0),
            days=parts.get("days", 0),
            hours=parts.get("hours", 0),
            minutes=parts.get("minutes", 0),
            seconds=parts.get("seconds", 0),
        )
        period = cls(parts.get("years", 0) * 12 + parts.get("months", 0), delta)
        if period.months == 0 and not delta:
            raise InvalidDefinitionError(f"周期不能为零 / the period must not be zero: {text}")
        return period

    def nth(self, anchor: datetime, n: int) -> datetime:
        """The n-th occurrence after ``anchor``: months by the calendar, anchored to its day."""
        month_index = anchor.month - 1 + self.months * n
        year, month = anchor.year + month_index // 12, month_index % 12 + 1
        day = min(anchor.day, calendar.monthrange(year, month)[1])
        return anchor.replace(year=year, month=month, day=day) + self.delta * n


def parse_cycle(expression: str) -> tuple[int | None, datetime, Period]:
    """A timer start event's cycle ``"R[n]/start/period"`` → (runs or None for unbounded, anchor, period).

    :raise InvalidDefinitionError: not a cycle opsflow can schedule.
    """
    value = sandbox.evaluate(expression, {})
    if not isinstance(value, str):
        raise InvalidDefinitionError(
            f"周期表达式必须是文本 / the cycle must be a text value: {expression}"
        )
    parts = value.strip().split("/")
    if len(parts) != 3 or not parts[0].upper().startswith("R"):
        raise InvalidDefinitionError(
            f"周期应为 R[n]/开始时间/间隔 / the cycle must be R[n]/start/period: {value}"
        )
    runs = int(parts[0][1:]) if parts[0][1:] else None
    try:
        anchor = datetime.fromisoformat(parts[1])
    except ValueError as exc:
        raise InvalidDefinitionError(f"开始时间无效 / invalid start time: {parts[1]}") from exc
    if anchor.tzinfo is None:
        raise InvalidDefinitionError(
            f"开始时间需要时区 / the start time needs a UTC offset: {parts[1]}"
        )
    return runs, anchor, Period.parse(parts[2])


def schedule(session: Session, key: str, cycle: str) -> None:
    """Register (or re-register) the periodic start of a process key from its timer start event."""
    runs, anchor, _period = parse_cycle(cycle)
    row = session.get(PeriodicStart, key)
    if row is None:
        row = PeriodicStart(process_key=key, fired=0)
        session.add(row)
    row.cycle, row.anchor = cycle, anchor
    row.runs_left, row.next_at = runs, anchor
    skip_past(row, clock.now())


def skip_past(row: PeriodicStart, now: datetime) -> None:
    """Occurrences missed while nobody was running are not started late, in bulk."""
    _runs, anchor, period = parse_cycle(row.cycle)
    while row.next_at < now - timedelta(days=1) and (row.runs_left is None or row.runs_left > 0):
        row.fired += 1
        row.runs_left = None if row.runs_left is None else row.runs_left - 1
        row.next_at = period.nth(anchor, row.fired)
