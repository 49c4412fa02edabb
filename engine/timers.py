"""Due timers and periodic starts; the worker loop (SKIP LOCKED on PostgreSQL, so none fires twice).

A worker picks one instance with a due timer, locks the instance row (skipping rows another
worker holds) and fires its timers in that same transaction; periodic starts are picked and
advanced the same way. SQLite serializes writers with BEGIN IMMEDIATE instead.
"""

from __future__ import annotations

import calendar
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit, clock, identity, runtime, sandbox
from engine.db import Database
from engine.errors import InvalidDefinitionError, OpsflowError
from engine.models import HumanTask, PeriodicStart, ProcessInstance, Timer

log = logging.getLogger(__name__)
_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


# --- calendar arithmetic for cycles (SpiffWorkflow turns P1M into a fixed 31 days) ---


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


def schedule_periodic_start(session: Session, key: str, cycle: str) -> None:
    """Register (or re-register) the periodic start of a process key from its timer start event."""
    runs, anchor, _period = parse_cycle(cycle)
    row = session.get(PeriodicStart, key)
    if row is None:
        row = PeriodicStart(process_key=key, fired=0)
        session.add(row)
    row.cycle, row.anchor = cycle, anchor
    row.runs_left, row.next_at = runs, anchor
    _skip_past(row, clock.now())


def _skip_past(row: PeriodicStart, now: datetime) -> None:
    """Occurrences missed while nobody was running are not started late, in bulk."""
    _runs, anchor, period = parse_cycle(row.cycle)
    while row.next_at < now - timedelta(days=1) and (row.runs_left is None or row.runs_left > 0):
        row.fired += 1
        row.runs_left = None if row.runs_left is None else row.runs_left - 1
        row.next_at = period.nth(anchor, row.fired)


# --- the worker ---


RETRY_AFTER = timedelta(minutes=10)
"""A timer whose instance could not take its step is tried again this much later."""


def fire_next_due(db: Database) -> int | None:
    """Fire the timers of one instance that has a due timer; the instance id, or None if none is due.

    When the instance's step fails (its own data, not the worker's fault), its due timers are
    put back by ``RETRY_AFTER`` and the failure is audited, so one broken case never holds up
    the timers of all the others.
    """
    try:
        with db.unit_of_work() as session:
            instance_id = _next_due(session)
            if instance_id is None:
                return None
            runtime.fire_timers_in(db, session, instance_id)
            return instance_id
    except OpsflowError as exc:
        with db.unit_of_work() as session:
            instance_id = _next_due(session)
            if instance_id is None:
                raise
            _postpone(session, instance_id, exc)
        return instance_id


def _next_due(session: Session) -> int | None:
    return session.scalar(
        select(ProcessInstance.id)
        .join(Timer, Timer.instance_id == ProcessInstance.id)
        .where(
            Timer.status == "waiting",
            Timer.fire_at < clock.now(),  # SpiffWorkflow fires strictly after the due time
            ProcessInstance.status == runtime.RUNNING,
        )
        .order_by(Timer.fire_at)
        .limit(1)
        .with_for_update(of=ProcessInstance, skip_locked=True)
    )


def _postpone(session: Session, instance_id: int, exc: OpsflowError) -> None:
    due = session.scalars(
        select(Timer).where(
            Timer.instance_id == instance_id,
            Timer.status == "waiting",
            Timer.fire_at < clock.now(),
        )
    ).all()
    retry_at = clock.now() + RETRY_AFTER
    for timer in due:
        timer.fire_at = retry_at
    audit.record(
        session,
        "timer_failed",
        actor=identity.SYSTEM.username,
        instance_id=instance_id,
        payload={
            "error": str(exc),
            "timers": sorted(t.bpmn_id for t in due),
            "retry_at": retry_at.isoformat(),
        },
    )


def start_next_periodic(db: Database) -> int | None:
    """Start one due periodic process; the new instance id, or None if none is due."""
    with db.unit_of_work() as session:
        row = session.scalar(
            select(PeriodicStart)
            .where(PeriodicStart.next_at <= clock.now())
            .where((PeriodicStart.runs_left.is_(None)) | (PeriodicStart.runs_left > 0))
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if row is None:
            return None
        _runs, anchor, period = parse_cycle(row.cycle)
        summary = runtime.start_in(
            db,
            session,
            identity.SYSTEM,
            row.process_key,
            {"scheduled_for": row.next_at.isoformat()},
        )
        row.fired += 1
        row.runs_left = None if row.runs_left is None else row.runs_left - 1
        row.next_at = period.nth(anchor, row.fired)
        return summary.id


def escalate_next_overdue(db: Database) -> int | None:
    """Mark one open task whose working-day deadline has passed as overdue (audited); its id or None."""
    with db.unit_of_work() as session:
        task = session.scalar(
            select(HumanTask)
            .where(
                HumanTask.status == "open",
                HumanTask.sort_due_at <= clock.now(),
                HumanTask.escalated_at.is_(None),
                HumanTask.paused_at.is_(None),
            )
            .order_by(HumanTask.sort_due_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if task is None or task.due_at is None:
            return None
        task.escalated_at = clock.now()
        audit.record(
            session,
            "task_overdue",
            actor=identity.SYSTEM.username,
            instance_id=task.instance_id,
            task_id=task.bpmn_id,
            payload={
                "task": task.id,
                "due_at": task.due_at.isoformat(),
                "role": task.candidate_role,
                "assignee": task.assignee_id,
            },
        )
        return task.id


def run_once(db: Database, limit: int = 1000) -> int:
    """Fire everything due now (bounded); returns how many timers, starts and escalations it handled."""
    done = 0
    for step in (fire_next_due, start_next_periodic, escalate_next_overdue):
        while done < limit:
            try:
                if step(db) is None:
                    break
            except OpsflowError:
                log.exception("worker step failed")
                break
            done += 1
    return done


def run_forever(db: Database, interval: float = 5.0, stop_after: float | None = None) -> None:
    """The ``opsflow worker`` loop."""
    started = time.monotonic()
    while stop_after is None or time.monotonic() - started < stop_after:
        if run_once(db) == 0:
            time.sleep(interval)
