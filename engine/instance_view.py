"""Reading one instance: its summary, case data, what it waits for, and its audit history."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from engine import audit, bpmn, caches, forms, identity
from engine.db import Database
from engine.errors import NotFoundError
from engine.models import HumanTask, ProcessInstance
from engine.steps import InstanceSummary
from engine.store import OPEN


@dataclass(frozen=True)
class InstanceView:
    summary: InstanceSummary
    started_by: str | None
    started_at: datetime
    data: Mapping[str, Any]
    waiting_messages: tuple[str, ...]
    waiting_timers: tuple[tuple[str, datetime], ...]
    history: tuple[Mapping[str, Any], ...]


def get_instance(db: Database, instance_id: int) -> InstanceView:
    """An instance with its data, what it waits for, and its audit history."""
    with db.read() as session:
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
        return InstanceView(
            summary,
            starter.get(instance.started_by or 0),
            instance.started_at,
            forms.to_json_data(bpmn.workflow_data(workflow)),
            tuple(bpmn.waiting_messages(workflow)),
            tuple(bpmn.waiting_timers(workflow)),
            tuple(audit.history(session, instance_id)),
        )
