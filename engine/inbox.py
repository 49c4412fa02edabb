"""Read-only task list queries (mine, my roles', done) → frozen dataclasses; never loads a workflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select

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


def list_tasks(
    db: Database, actor: Actor, tab: str = MINE, *, limit: int = 50, offset: int = 0
) -> list[TaskRow]:
    """One page of the actor's tasks: ``mine`` (assigned to me), ``claimable`` (my roles'), ``done``."""
    order = HumanTask.completed_at.desc() if tab == DONE else HumanTask.created_at
    with db.read() as session:
        rows = session.execute(
            _query(actor, tab).order_by(order, HumanTask.id).limit(limit).offset(offset)
        )
        return [_row(task, instance, definition) for task, instance, definition in rows]


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
