"""Due timers and periodic starts; the worker loop (SKIP LOCKED on PostgreSQL, so none fires twice).

A worker picks one instance with a due timer, locks the instance row (skipping rows another
worker holds) and fires its timers in that same transaction; periodic starts are picked and
advanced the same way. SQLite serializes writers with BEGIN IMMEDIATE instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit, notifications
from engine.definitions import periodic_starts
from engine.errors import OpsflowError
from engine.people import identity
from engine.runtime.services import instance_actions
from engine.runtime.step.steps import RUNNING
from engine.storage import deadlines
from engine.storage.db import Database
from engine.storage.models import HumanTask, PeriodicStart, ProcessInstance, Timer, TimerStatus
from engine.storage.txn import of_session
from engine.timekeeping import clock

log = logging.getLogger(__name__)
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
            instance_actions.fire_timers_in(db, session, instance_id)
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
            Timer.status == TimerStatus.WAITING,
            Timer.fire_at < clock.now(),  # SpiffWorkflow fires strictly after the due time
            ProcessInstance.status == RUNNING,
        )
        .order_by(Timer.fire_at)
        .limit(1)
        .with_for_update(of=ProcessInstance, skip_locked=True)
    )


def _postpone(session: Session, instance_id: int, exc: OpsflowError) -> None:
    due = session.scalars(
        select(Timer).where(
            Timer.instance_id == instance_id,
            Timer.status == TimerStatus.WAITING,
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
        _runs, anchor, period = periodic_starts.parse_cycle(row.cycle)
        summary = instance_actions.start_in(
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
                deadlines.overdue(clock.now()),
                HumanTask.escalated_at.is_(None),
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
        tx = of_session(session)
        title = notifications.case_title(tx, task.instance_id)
        notifications.notify(tx, notifications.for_overdue(tx, task, title))
        return task.id


def run_once(db: Database, limit: int = 1000, mailer: notifications.Mailer | None = None) -> int:
    """Fire everything due now (bounded); returns how many timers, starts and escalations it handled.

    Then it gives the deadline reminders due and, with a ``mailer``, sends the e-mail outbox
    (neither is counted: they change no case).
    """
    done = _steps(db, limit)
    _side_steps(db, limit, mailer)
    return done


def _side_steps(db: Database, limit: int, mailer: notifications.Mailer | None) -> None:
    steps: list[Callable[[Database], int | None]] = [notifications.remind_next_due_soon]
    if mailer is not None:
        steps.append(partial(notifications.send_next_email, mailer=mailer))
    for step in steps:
        for _ in range(limit):
            try:
                if step(db) is None:
                    break
            except OpsflowError:
                log.exception("worker step failed")
                break


def _steps(db: Database, limit: int) -> int:
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


def run_forever(
    db: Database,
    interval: float = 5.0,
    stop_after: float | None = None,
    mailer: notifications.Mailer | None = None,
) -> None:
    """The ``opsflow worker`` loop."""
    started = time.monotonic()
    while stop_after is None or time.monotonic() - started < stop_after:
        if run_once(db, mailer=mailer) == 0:
            time.sleep(interval)
