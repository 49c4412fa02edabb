"""Reading one instance: its summary, case data, what it waits for, and its audit history."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit, bpmn, forms
from engine.errors import NotFoundError
from engine.people import assignment, identity
from engine.people.identity import Actor
from engine.runtime.base import access, caches, unit_of_work
from engine.runtime.services import case_document
from engine.runtime.step.steps import RUNNING, InstanceSummary
from engine.storage import store
from engine.storage.db import Database
from engine.storage.models import HumanTask, ProcessDefinition, ProcessInstance
from engine.storage.store import OPEN
from engine.storage.txn import Txn

MESSAGE_ROLE = "messageRole"
"""A catch event's property naming the role (code or name) that enters its message."""
MESSAGE_ANSWERERS = ("ADMIN",)
"""Roles that may deliver any awaited message (integrations run as an administrator)."""


@dataclass(frozen=True)
class AwaitedMessage:
    """An outside answer the case waits for: the message, the event waiting for it, the role
    that liaises with the outside party and enters it, and its form (None: free fields)."""

    message: str
    bpmn_id: str
    name: str
    role: str | None
    form_key: str | None


def awaited_messages(definition: caches.Definition, workflow: Any) -> tuple[AwaitedMessage, ...]:
    """What the workflow waits for from outside, one entry per message (its first waiting event).

    The liaising role: the event's ``messageRole`` property, else its lane, else (a boundary
    event) the lane of the task it is attached to.
    """
    found: dict[str, AwaitedMessage] = {}
    for event in bpmn.awaited_messages(workflow):
        if event.message in found:
            continue
        named = event.properties.get(MESSAGE_ROLE)
        role = (
            assignment.role_for_lane(named, {})
            if named
            else assignment.role_for_lane(event.lane or event.attached_lane, {})
        )
        form = event.message if event.message in definition.forms else None
        found[event.message] = AwaitedMessage(event.message, event.bpmn_id, event.name, role, form)
    return tuple(found.values())


def may_answer(actor: Actor, awaited: AwaitedMessage) -> bool:
    """Whether the actor may enter this outside answer: the liaising role, or an administrator."""
    return actor.has_role(*MESSAGE_ANSWERERS) or (
        awaited.role is not None and actor.has_role(awaited.role)
    )


@dataclass(frozen=True)
class InstanceView:
    summary: InstanceSummary
    started_by: str | None
    started_at: datetime
    data: Mapping[str, Any]
    waiting_messages: tuple[str, ...]
    waiting_timers: tuple[tuple[str, datetime], ...]
    history: tuple[Mapping[str, Any], ...]
    document: case_document.CaseDocument
    awaiting: tuple[AwaitedMessage, ...] = ()
    answer_forms: Mapping[str, forms.FormDefinition | None] = field(default_factory=dict)
    """The awaited messages the reader may enter (``open_case``), with their forms."""


def get_instance(db: Database, instance_id: int) -> InstanceView:
    """An instance with its data, what it waits for, and its audit history."""
    with db.read() as session:
        return view_of(db, session, instance_id)


def view_of(db: Database, session: Session, instance_id: int) -> InstanceView:
    """``get_instance`` inside the caller's read transaction. :raise NotFoundError:"""
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFoundError(f"流程实例不存在 / no case #{instance_id}")
    definition = caches.of(db).load_definition(session, instance.definition_id)
    workflow = bpmn.load_state(definition.compiled, instance.state)
    starter = identity.usernames(session, [instance.started_by] if instance.started_by else [])
    open_ids = session.scalars(
        select(HumanTask.id)
        .where(HumanTask.instance_id == instance.id, HumanTask.status == OPEN)
        .order_by(HumanTask.id)
    ).all()
    summary = InstanceSummary(
        instance.id,
        definition.key,
        definition.version,
        instance.status,
        instance.business_key,
        instance.title,
        instance.version,
        tuple(open_ids),
        instance.error_message,
        instance.error_element,
    )
    data = forms.to_json_data(bpmn.workflow_data(workflow))
    history = tuple(audit.history(session, instance_id))
    return InstanceView(
        summary,
        starter.get(instance.started_by or 0),
        instance.started_at,
        data,
        tuple(bpmn.waiting_messages(workflow)),
        tuple(bpmn.waiting_timers(workflow)),
        history,
        case_document.document_of(db, session, definition, instance_id, data, history),
        awaited_messages(definition, workflow),
    )


@dataclass(frozen=True)
class CaseRow:
    id: int
    process_key: str
    title: str
    business_key: str | None
    status: str
    started_at: datetime
    waiting_on: tuple[tuple[str, str | None, str | None], ...]  # (task name, role, assignee)


def cases_of(db: Database, actor: Actor, *, limit: int = 100) -> list[CaseRow]:
    """Cases the actor started or worked on, newest first, with where each one waits and for whom."""
    with db.read() as session:
        worked = select(HumanTask.instance_id).where(
            (HumanTask.completed_by == actor.id) | (HumanTask.assignee_id == actor.id)
        )
        rows = session.execute(
            select(ProcessInstance, ProcessDefinition.key)
            .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
            .where((ProcessInstance.started_by == actor.id) | ProcessInstance.id.in_(worked))
            .order_by(ProcessInstance.started_at.desc(), ProcessInstance.id.desc())
            .limit(limit)
        ).all()
        ids = [instance.id for instance, _key in rows]
        open_rows = session.execute(
            select(
                HumanTask.instance_id,
                HumanTask.name,
                HumanTask.candidate_role,
                HumanTask.assignee_id,
            )
            .where(HumanTask.instance_id.in_(ids), HumanTask.status == OPEN)
            .order_by(HumanTask.id)
        ).all()
        names = identity.usernames(session, [r.assignee_id for r in open_rows if r.assignee_id])
        waiting: dict[int, list[tuple[str, str | None, str | None]]] = {}
        for row in open_rows:
            waiting.setdefault(row.instance_id, []).append(
                (row.name, row.candidate_role, names.get(row.assignee_id or 0))
            )
        return [
            CaseRow(
                instance.id,
                key,
                instance.title,
                instance.business_key,
                instance.status,
                instance.started_at,
                tuple(waiting.get(instance.id, ())),
            )
            for instance, key in rows
        ]


def open_case(db: Database, actor: Actor, instance_id: int) -> InstanceView:
    """The case page, read in one transaction: for whoever started the case or worked on it, and
    the reader roles; never for someone recused from it.

    :raise NotFoundError: :raise PermissionDeniedError: (audited)
    """
    return unit_of_work.read(db, actor, partial(_open, db, actor, instance_id), instance_id)


def _open(db: Database, actor: Actor, instance_id: int, session: Session, tx: Txn) -> InstanceView:
    instance = store.instance(tx, instance_id)
    access.check_may_read_case(tx, actor, instance)
    view = view_of(db, session, instance_id)
    if view.summary.status != RUNNING:
        return view
    definition = caches.of(db).load_definition(session, instance.definition_id)
    answer_forms = {
        awaited.message: (
            caches.of(db).form(definition, awaited.form_key) if awaited.form_key else None
        )
        for awaited in view.awaiting
        if may_answer(actor, awaited)
    }
    return replace(view, answer_forms=answer_forms)


@dataclass(frozen=True)
class Diagram:
    """A case's BPMN diagram with what is done and what waits now, for the viewer's highlights."""

    bpmn_xml: str
    completed: tuple[str, ...]
    current: tuple[str, ...]


def diagram_of(db: Database, actor: Actor, instance_id: int) -> Diagram:
    """:raise NotFoundError: :raise PermissionDeniedError: (audited), as ``open_case``."""
    return unit_of_work.read(db, actor, partial(_diagram, db, actor, instance_id), instance_id)


def _diagram(db: Database, actor: Actor, instance_id: int, session: Session, tx: Txn) -> Diagram:
    access.check_may_read_case(tx, actor, store.instance(tx, instance_id))
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFoundError(f"流程实例不存在 / no case #{instance_id}")
    definition = caches.of(db).load_definition(session, instance.definition_id)
    xml = session.scalar(
        select(ProcessDefinition.bpmn_xml).where(ProcessDefinition.id == instance.definition_id)
    )
    workflow = bpmn.load_state(definition.compiled, instance.state)
    current = session.scalars(
        select(HumanTask.bpmn_id).where(
            HumanTask.instance_id == instance_id, HumanTask.status == OPEN
        )
    ).all()
    return Diagram(xml or "", tuple(sorted(bpmn.completed_bpmn_ids(workflow))), tuple(current))
