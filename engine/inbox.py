"""Read-only task list queries (mine, my roles', done) → frozen dataclasses; never loads a workflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select

from engine import clock, workdays
from engine.db import Database
from engine.identity import Actor
from engine.models import HumanTask, ProcessDefinition, ProcessInstance

MINE, CLAIMABLE, DONE = "mine", "claimable", "done"


@dataclass(frozen=True)
class TaskRow:
    id: int
    instance_id: int
    process_key: str
    instance_title: str
    business_key: str | None
    bpmn_id: str
    name: str
    candidate_role: str | None
    assignee_id: int | None
    form_key: str | None
    status: str
    due_at: datetime | None
    created_at: datetime
    completed_at: datetime | None


def _base() -> Select[HumanTask, ProcessInstance, ProcessDefinition]:
    return (
        select(HumanTask, ProcessInstance, ProcessDefinition)
        .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
        .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
    )


def _query(actor: Actor, tab: str) -> Select[HumanTask, ProcessInstance, ProcessDefinition]:
    if tab == MINE:
        return _base().where(HumanTask.status == "open", HumanTask.assignee_id == actor.id)
    if tab == CLAIMABLE:
        return _base().where(
            HumanTask.status == "open",
            HumanTask.assignee_id.is_(None),
            HumanTask.candidate_role.in_(actor.roles),
        )
    if tab == DONE:
        return _base().where(HumanTask.status == "completed", HumanTask.completed_by == actor.id)
    raise ValueError(f"unknown inbox tab {tab!r}")


@dataclass(frozen=True)
class Filters:
    """What the inbox list is narrowed to; every field optional."""

    process: str | None = None  # process key
    search: str | None = None  # business key or case title contains
    due: str | None = None  # overdue | today | week


def _filtered(
    query: Select[HumanTask, ProcessInstance, ProcessDefinition], filters: Filters, now: datetime
) -> Select[HumanTask, ProcessInstance, ProcessDefinition]:
    if filters.process:
        query = query.where(ProcessDefinition.key == filters.process)
    if filters.search:
        pattern = f"%{filters.search.strip()}%"
        query = query.where(
            or_(ProcessInstance.business_key.like(pattern), ProcessInstance.title.like(pattern))
        )
    if filters.due:
        day_end = workdays.end_of_day(now.astimezone(workdays.CHINA_TZ).date())
        limit = {
            "overdue": now,
            "today": day_end,
            "week": day_end + timedelta(days=6 - day_end.weekday()),
        }.get(filters.due)
        if limit is not None:
            query = query.where(HumanTask.due_at.is_not(None), HumanTask.due_at <= limit)
    return query


def list_tasks(
    db: Database,
    actor: Actor,
    tab: str = MINE,
    *,
    filters: Filters | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[TaskRow]:
    """One page of the actor's tasks: ``mine`` (assigned to me), ``claimable`` (my roles'), ``done``.

    Open tasks come soonest-due first (tasks without a due time last), then oldest first.
    """
    query = _filtered(_query(actor, tab), filters or Filters(), clock.now())
    order: tuple[Any, ...] = (
        (HumanTask.completed_at.desc(), HumanTask.id.desc())
        if tab == DONE
        else (HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.created_at, HumanTask.id)
    )
    with db.read() as session:
        rows = session.execute(query.order_by(*order).limit(limit).offset(offset))
        return [_row(task, instance, definition) for task, instance, definition in rows]


def counts(db: Database, actor: Actor, filters: Filters | None = None) -> dict[str, int]:
    """How many tasks each tab holds (with the same filters)."""
    found = {}
    with db.read() as session:
        for tab in (MINE, CLAIMABLE, DONE):
            query = _filtered(_query(actor, tab), filters or Filters(), clock.now())
            found[tab] = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return found


def open_tasks_of(db: Database, instance_id: int) -> list[TaskRow]:
    with db.read() as session:
        rows = session.execute(
            _base()
            .where(HumanTask.instance_id == instance_id, HumanTask.status == "open")
            .order_by(HumanTask.id)
        )
        return [_row(task, instance, definition) for task, instance, definition in rows]


def get_task(db: Database, task_id: int) -> TaskRow | None:
    with db.read() as session:
        row = session.execute(_base().where(HumanTask.id == task_id)).one_or_none()
        return _row(*row) if row else None


def _row(task: HumanTask, instance: ProcessInstance, definition: ProcessDefinition) -> TaskRow:
    return TaskRow(
        task.id,
        task.instance_id,
        definition.key,
        instance.title,
        instance.business_key,
        task.bpmn_id,
        task.name,
        task.candidate_role,
        task.assignee_id,
        task.form_key,
        task.status,
        task.due_at,
        task.created_at,
        task.completed_at,
    )
