"""Cases in the error state: who may see and help them, and the list they work from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import PermissionDeniedError
from engine.people.identity import Actor
from engine.runtime.base import unit_of_work
from engine.runtime.step.steps import ERROR
from engine.storage.db import Database
from engine.storage.models import AuditEvent, ProcessDefinition, ProcessInstance
from engine.storage.txn import Txn

FAILURE_READERS = ("ADMIN", "OPS")
"""Roles that see the failed cases and may cancel one (administrators, operations)."""
RETRIERS = ("ADMIN", "PO", "OPS")
"""Roles that may run a failed step again once its cause is fixed."""


@dataclass(frozen=True)
class FailedCase:
    id: int
    process_key: str
    title: str
    business_key: str | None
    element: str | None
    message: str | None
    since: datetime | None  # when it failed, as the audit trail recorded it


def may_see_failures(actor: Actor) -> bool:
    return actor.has_role(*FAILURE_READERS)


def check_may_see_failures(actor: Actor) -> None:
    """:raise PermissionDeniedError: not an administrator or operations."""
    if not may_see_failures(actor):
        raise PermissionDeniedError(
            "只有管理员或运营管理组可以查看出错的流程 / only ADMIN or OPS may see failed cases"
        )


def failed_cases(db: Database, actor: Actor, *, limit: int = 200) -> list[FailedCase]:
    """Cases in the error state, the most recent failure first.

    :raise PermissionDeniedError: (audited) not ADMIN or OPS.
    """
    return unit_of_work.read(db, actor, partial(_failed_cases, actor, limit))


def _failed_cases(actor: Actor, limit: int, session: Session, _tx: Txn) -> list[FailedCase]:
    check_may_see_failures(actor)
    failed_at = (
        select(AuditEvent.instance_id, func.max(AuditEvent.at).label("at"))
        .where(AuditEvent.type == "instance_failed")
        .group_by(AuditEvent.instance_id)
        .subquery()
    )
    rows = session.execute(
        select(ProcessInstance, ProcessDefinition.key, failed_at.c.at)
        .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
        .outerjoin(failed_at, failed_at.c.instance_id == ProcessInstance.id)
        .where(ProcessInstance.status == ERROR)
        .order_by(failed_at.c.at.desc(), ProcessInstance.id.desc())
        .limit(limit)
    ).all()
    return [
        FailedCase(
            instance.id,
            key,
            instance.title,
            instance.business_key,
            instance.error_element,
            instance.error_message,
            datetime.fromisoformat(at) if at else None,
        )
        for instance, key, at in rows
    ]
