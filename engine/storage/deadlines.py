"""The deadline rules of an open task, as conditions on ``human_task``: the inbox's flags and
filter, the escalation worker and the reminders all ask these, so "overdue" and "due soon" mean
one thing everywhere."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_

from engine.storage.models import HumanTask, TaskStatus

DUE_SOON = timedelta(hours=24)
"""Open tasks due within this are due soon (marked in the inbox, reminded once)."""


def overdue(now: datetime) -> ColumnElement[bool]:
    """The task is open, its clock is not paused, and its due time has passed."""
    return and_(
        HumanTask.status == TaskStatus.OPEN,
        HumanTask.paused_at.is_(None),
        HumanTask.sort_due_at < now,
    )


def due_soon(now: datetime) -> ColumnElement[bool]:
    """The task is open, its clock running, not overdue, and due within ``DUE_SOON``."""
    return and_(
        HumanTask.status == TaskStatus.OPEN,
        HumanTask.paused_at.is_(None),
        HumanTask.sort_due_at >= now,
        HumanTask.sort_due_at < now + DUE_SOON,
    )
