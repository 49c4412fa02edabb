"""Task forms saved unfinished: kept as typed (not validated), for the person working the task."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from engine.errors import ConflictError, InvalidInputError
from engine.people.identity import Actor
from engine.runtime.base import access, unit_of_work
from engine.storage import store
from engine.storage.db import Database
from engine.storage.models import TaskDraft
from engine.storage.txn import Txn
from engine.timekeeping import clock

MAX_DRAFT_CHARS = 200_000


def save(db: Database, actor: Actor, task_id: int, data: Mapping[str, Any]) -> None:
    """Keep what the actor typed so far.

    :raise PermissionDeniedError: (audited) not theirs to work. :raise InvalidInputError: too large.
    """
    values = {str(k): v for k, v in data.items()}
    if len(repr(values)) > MAX_DRAFT_CHARS:
        message = (
            f"草稿超过 {MAX_DRAFT_CHARS:,} 个字符，未保存 / the draft is over "
            f"{MAX_DRAFT_CHARS:,} characters and was not saved"
        )
        raise InvalidInputError(message, {"draft": [message]})
    unit_of_work.run(db, actor, partial(_save, db, actor, task_id, values), lean=False)


def _save(db: Database, actor: Actor, task_id: int, values: dict[str, Any], tx: Txn) -> None:
    task, instance = store.task(tx, task_id)
    unit_of_work.note_task(tx, task)
    if task.status != store.OPEN:
        raise ConflictError("任务已不再待办 / the task is no longer open")
    access.check_may_act(db, tx, actor, task, instance)
    session = unit_of_work.orm_session(tx)
    draft = session.get(TaskDraft, task_id)
    if draft is None:
        session.add(TaskDraft(task_id=task_id, user_id=actor.id, data=values, saved_at=clock.now()))
    else:
        draft.user_id, draft.data, draft.saved_at = actor.id, values, clock.now()


def load(db: Database, actor: Actor, task_id: int) -> Mapping[str, Any] | None:
    """The actor's own draft of the task, if they saved one."""
    with db.read() as session:
        draft = session.get(TaskDraft, task_id)
        return dict(draft.data) if draft is not None and draft.user_id == actor.id else None
