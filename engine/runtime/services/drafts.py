"""Task forms saved unfinished: kept as typed (not validated), for the person working the task."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from engine.errors import ConflictError
from engine.people import assignment
from engine.people.identity import Actor
from engine.runtime.base import unit_of_work
from engine.storage import store
from engine.storage.db import Database
from engine.storage.models import TaskDraft
from engine.storage.txn import Txn
from engine.timekeeping import clock

MAX_DRAFT_CHARS = 200_000


def save(db: Database, actor: Actor, task_id: int, data: Mapping[str, Any]) -> None:
    """Keep what the actor typed so far. :raise PermissionDeniedError: (audited) not theirs to work."""
    unit_of_work.run(db, actor, partial(_check, actor, task_id))
    values = {str(k): v for k, v in data.items()}
    if len(repr(values)) > MAX_DRAFT_CHARS:
        values = {}
    with db.unit_of_work() as session:
        draft = session.get(TaskDraft, task_id)
        if draft is None:
            session.add(
                TaskDraft(task_id=task_id, user_id=actor.id, data=values, saved_at=clock.now())
            )
        else:
            draft.user_id, draft.data, draft.saved_at = actor.id, values, clock.now()


def load(db: Database, actor: Actor, task_id: int) -> Mapping[str, Any] | None:
    """The actor's own draft of the task, if they saved one."""
    with db.read() as session:
        draft = session.get(TaskDraft, task_id)
        return dict(draft.data) if draft is not None and draft.user_id == actor.id else None


def _check(actor: Actor, task_id: int, tx: Txn) -> None:
    row, _instance = store.task(tx, task_id)
    unit_of_work.note_task(tx, row)
    if row.status != store.OPEN:
        raise ConflictError("任务已不再待办 / the task is no longer open")
    assignment.check_may_work(actor, row.candidate_role, row.assignee_id)
    assignment.check_not_excluded(actor, row.excluded)
