"""What the task page shows: the task, its form, the case around it; opened only by who may work it.

Opening an open task someone may not work (another role's task, someone else's assigned task, a
task they must recuse themselves from) is refused and audited like any other refused action. A
finished task can be read by whoever completed it, by whoever could have worked it, and by
process owners, administrators and compliance (``access.check_may_read_task``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from engine import forms
from engine.errors import NotFoundError
from engine.people import identity
from engine.people.identity import Actor
from engine.runtime.base import access, caches, unit_of_work
from engine.runtime.services import inbox
from engine.runtime.services.instance_view import InstanceView, view_of
from engine.storage import store
from engine.storage.db import Database
from engine.storage.txn import Txn


@dataclass(frozen=True)
class TaskView:
    task: inbox.TaskRow
    form: forms.FormDefinition | None
    case: InstanceView
    open: bool  # still to be done; False: a finished task, shown read-only
    colleagues: tuple[tuple[str, str], ...] = ()  # (username, name) the task may be delegated to
    # the form's person pickers: role -> (username, name) of its active holders
    people: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


def open_task(db: Database, actor: Actor, task_id: int) -> TaskView:
    """The task page's content, read in one transaction.

    :raise NotFoundError: :raise PermissionDeniedError: (audited)
    """
    return unit_of_work.read(db, actor, partial(_open, db, actor, task_id))


def _open(db: Database, actor: Actor, task_id: int, session: Session, tx: Txn) -> TaskView:
    row, instance = store.task(tx, task_id)
    unit_of_work.note_task(tx, row)
    access.check_may_read_task(db, tx, actor, row, instance)
    task = inbox.task_in(session, task_id)
    if task is None:
        raise NotFoundError(f"任务不存在 / no task #{task_id}")
    form: forms.FormDefinition | None = None
    colleagues: tuple[tuple[str, str], ...] = ()
    if task.form_key is not None:
        definition = caches.of(db).load_definition(session, instance.definition_id)
        form = caches.of(db).form(definition, task.form_key)
    if task.status == store.OPEN and task.candidate_role is not None:
        colleagues = tuple(
            (c.username, c.display_name)
            for c in identity.colleagues(session, task.candidate_role, besides=actor.id)
        )
    people = {
        role: tuple(
            (c.username, c.display_name) for c in identity.colleagues(session, role, besides=0)
        )
        for role in sorted(set(form.user_roles().values()) if form is not None else ())
    }
    case = view_of(db, session, task.instance_id)
    return TaskView(task, form, case, task.status == store.OPEN, colleagues, people)


def prefill(view: TaskView) -> Mapping[str, Any]:
    """The values a form starts with: the case's current data for the form's fields."""
    if view.form is None:
        return {}
    return {f.name: view.case.data[f.name] for f in view.form.fields if f.name in view.case.data}
