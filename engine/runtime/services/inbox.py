"""Read-only task list queries (mine, my roles', done) → frozen dataclasses; never loads a workflow."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    case,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from engine.errors import InvalidInputError, NotFoundError
from engine.people.identity import Actor
from engine.storage import store
from engine.storage.db import Database
from engine.storage.deadlines import due_soon, overdue
from engine.storage.models import HumanTask, ProcessDefinition, ProcessInstance, TaskStatus
from engine.storage.models import SavedFilter as SavedFilterRow
from engine.timekeeping import clock, workdays

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
    overdue: bool  # open, its clock running, and past its due time (``overdue``)
    due_soon: bool  # open, not overdue, due within ``DUE_SOON``


def _flag(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return type_coerce(case((condition, True), else_=False), Boolean)


_COLUMNS = (
    HumanTask.id,
    HumanTask.instance_id,
    ProcessDefinition.key,
    ProcessInstance.title,
    ProcessInstance.business_key,
    HumanTask.bpmn_id,
    HumanTask.name,
    HumanTask.candidate_role,
    HumanTask.assignee_id,
    HumanTask.form_key,
    HumanTask.status,
    HumanTask.due_at,
    HumanTask.created_at,
    HumanTask.completed_at,
)


def _base(now: datetime) -> Select[*tuple[Any, ...]]:
    """The columns of a TaskRow (never a whole instance or definition: their state and XML are big)."""
    return (
        select(*_COLUMNS, _flag(overdue(now)), _flag(due_soon(now)))
        .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
        .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
    )


def not_excluded(actor: Actor) -> ColumnElement[bool]:
    """The task does not list the actor among those who must recuse themselves (excludeUsers)."""
    listed = literal(",") + HumanTask.excluded_user_ids + literal(",")
    return or_(HumanTask.excluded_user_ids.is_(None), ~listed.like(store.listed(actor.id)))


def _conditions(actor: Actor, tab: str) -> list[ColumnElement[bool]]:
    """A tab's conditions on human_task alone: each one is an index's leading columns."""
    if tab == MINE:
        return [HumanTask.status == TaskStatus.OPEN, HumanTask.assignee_id == actor.id]
    if tab == CLAIMABLE:
        return [
            HumanTask.status == TaskStatus.OPEN,
            HumanTask.candidate_role.in_(actor.roles),
            HumanTask.assignee_id.is_(None),
            not_excluded(actor),
        ]
    if tab == DONE:
        return [HumanTask.completed_by == actor.id, HumanTask.status == TaskStatus.DONE]
    raise ValueError(f"unknown inbox tab {tab!r}")


@dataclass(frozen=True)
class Filters:
    """What the inbox list is narrowed to; every field optional."""

    process: str | None = None  # process key
    search: str | None = None  # task name, business key or case title contains
    due: str | None = None  # overdue | today | week
    sort: str = "due"  # due (soonest first, undated last) | created (oldest first)


def _select(what: Any, actor: Actor, tab: str, filters: Filters, now: datetime) -> Select[Any]:
    """``what`` from the tab's tasks narrowed by ``filters``; joins only when a filter needs them."""
    query = select(what).select_from(HumanTask).where(*_conditions(actor, tab))
    if filters.process or filters.search:
        query = query.join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
    if filters.process:
        query = query.join(
            ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id
        ).where(ProcessDefinition.key == filters.process)
    if filters.search:
        pattern = f"%{filters.search.strip()}%"
        query = query.where(
            or_(
                HumanTask.name.like(pattern),
                ProcessInstance.business_key.like(pattern),
                ProcessInstance.title.like(pattern),
            )
        )
    if filters.due:
        day_end = workdays.end_of_day(now.astimezone(workdays.CHINA_TZ).date())
        if filters.due == "overdue":
            query = query.where(overdue(now))
        limit = {
            "today": day_end,
            "week": day_end + timedelta(days=6 - day_end.weekday()),
        }.get(filters.due)
        if limit is not None:
            query = query.where(HumanTask.sort_due_at <= limit)
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

    Open tasks come soonest-due first, undated last, then in the order they arrived; done
    tasks latest first. The page's ids are read in index order from human_task alone, then
    only those rows are joined with their case and process.
    """
    filters = filters or Filters()
    order: tuple[Any, ...] = (
        (HumanTask.completed_at.desc(), HumanTask.id.desc())
        if tab == DONE
        else (HumanTask.id,)
        if filters.sort == "created"
        else (HumanTask.sort_due_at, HumanTask.id)
    )
    now = clock.now()
    page = _select(HumanTask.id, actor, tab, filters, now)
    with db.read() as session:
        ids = session.scalars(page.order_by(*order).limit(limit).offset(offset)).all()
        if not ids:
            return []
        rows = session.execute(_base(now).where(HumanTask.id.in_(ids)))
        found = {row.id: TaskRow(*row) for row in rows}
        return [found[task_id] for task_id in ids]


def counts(db: Database, actor: Actor, filters: Filters | None = None) -> dict[str, int]:
    """How many tasks each tab holds (with the same filters), counted in the indexes."""
    found = {}
    now = clock.now()
    with db.read() as session:
        for tab in (MINE, CLAIMABLE, DONE):
            query = _select(func.count(), actor, tab, filters or Filters(), now)
            found[tab] = session.scalar(query) or 0
    return found


def open_tasks_of(db: Database, instance_id: int) -> list[TaskRow]:
    with db.read() as session:
        rows = session.execute(
            _base(clock.now())
            .where(HumanTask.instance_id == instance_id, HumanTask.status == TaskStatus.OPEN)
            .order_by(HumanTask.id)
        )
        return [TaskRow(*row) for row in rows]


def get_task(db: Database, task_id: int) -> TaskRow | None:
    with db.read() as session:
        return task_in(session, task_id)


def task_in(session: Session, task_id: int) -> TaskRow | None:
    """``get_task`` inside the caller's read transaction."""
    row = session.execute(_base(clock.now()).where(HumanTask.id == task_id)).one_or_none()
    return TaskRow(*row) if row else None


# --- saved filters ---

QUERY_KEYS = ("tab", "process", "q", "due", "sort")


@dataclass(frozen=True)
class SavedFilter:
    id: int
    name: str
    query: Mapping[str, str]


def saved_filters(db: Database, actor: Actor) -> list[SavedFilter]:
    with db.read() as session:
        rows = session.scalars(
            select(SavedFilterRow)
            .where(SavedFilterRow.user_id == actor.id)
            .order_by(SavedFilterRow.name)
        )
        return [SavedFilter(r.id, r.name, dict(r.query)) for r in rows]


def save_filter(db: Database, actor: Actor, name: str, query: Mapping[str, str]) -> None:
    """Save (or replace) the actor's filter ``name``; only the inbox's own query keys are kept."""
    name = name.strip()
    if not name or len(name) > 64:
        message = "筛选名称须为 1-64 个字符 / a filter name has 1-64 characters"
        raise InvalidInputError(message, {"name": [message]})
    kept = {k: str(query[k])[:100] for k in QUERY_KEYS if query.get(k)}
    with db.unit_of_work() as session:
        row = session.scalar(
            select(SavedFilterRow).where(
                SavedFilterRow.user_id == actor.id, SavedFilterRow.name == name
            )
        )
        if row is None:
            session.add(
                SavedFilterRow(user_id=actor.id, name=name, query=kept, created_at=clock.now())
            )
        else:
            row.query = kept


def delete_filter(db: Database, actor: Actor, filter_id: int) -> None:
    with db.unit_of_work() as session:
        row = session.get(SavedFilterRow, filter_id)
        if row is None or row.user_id != actor.id:
            raise NotFoundError(f"筛选不存在 / no saved filter #{filter_id}")
        session.delete(row)
