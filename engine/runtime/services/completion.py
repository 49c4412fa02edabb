"""Completing a task: check who may, validate the form data, step the workflow on and persist it."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from engine import audit, bpmn, forms
from engine.errors import ConflictError, InvalidInputError
from engine.people import identity
from engine.people.identity import Actor
from engine.runtime.base import access, caches, unit_of_work
from engine.runtime.services import task_actions
from engine.runtime.step import steps
from engine.runtime.step.steps import InstanceSummary
from engine.storage import store
from engine.storage.db import Database
from engine.storage.store import InstanceRow, TaskRow
from engine.storage.txn import Txn
from engine.timekeeping import clock, workdays


def complete_task(
    db: Database,
    actor: Actor,
    task_id: int,
    data: Mapping[str, Any],
    expected_version: int | None = None,
    *,
    locale: str = "zh",
) -> InstanceSummary:
    """Validate the task's form data, complete the task and run the process on to its next wait.

    Field errors come in ``locale`` ("zh" or "en").

    :raise NotFoundError, PermissionDeniedError (audited), ConflictError (someone was faster),
        InvalidInputError (field errors; nothing is saved).
    """
    return unit_of_work.run(
        db, actor, partial(_complete, db, actor, task_id, data, expected_version, locale)
    )


def _complete(
    db: Database,
    actor: Actor,
    task_id: int,
    data: Mapping[str, Any],
    expected_version: int | None,
    locale: str,
    tx: Txn,
) -> InstanceSummary:
    task, instance = task_actions.open_task(tx, task_id, lock=True)
    _check_version(instance, expected_version)
    definition = access.check_may_act(db, tx, actor, task, instance)
    cleaned = _validated(db, definition, task, data, locale)
    hot = steps.checkout(db, tx, instance, definition)
    failure = steps.attempt(
        tx,
        actor,
        instance.id,
        hot,
        lambda: bpmn.complete_user_task(hot.workflow, task.spiff_task_id, cleaned),
    )
    submitted = forms.to_json_data(cleaned)
    store.complete_task(tx, task.id, clock.now(), actor.id or None, submitted)
    hot.open_tasks.pop(task.spiff_task_id, None)
    audit.record(
        tx,
        "task_completed",
        actor=actor.username,
        instance_id=instance.id,
        task_id=task.bpmn_id,
        payload={
            "task": task.id,
            "form": task.form_key,
            "data": submitted,
            "version": definition.version,
            "roles": sorted(actor.roles),
        },
    )
    return steps.persist(db, tx, actor, instance, definition, hot, failure)


def _check_version(instance: InstanceRow, expected_version: int | None) -> None:
    if expected_version is not None and instance.version != expected_version:
        raise ConflictError(
            "流程实例已被他人修改，请刷新后重试 / the case changed since you opened it; reload"
        )


def _validated(
    db: Database, definition: caches.Definition, task: TaskRow, data: Mapping[str, Any], locale: str
) -> dict[str, Any]:
    if task.form_key is None:
        if data:
            raise InvalidInputError(
                "此任务没有表单 / this task takes no data",
                {k: ["未知字段 / unknown field"] for k in data},
            )
        return {}
    form = caches.of(db).form(definition, task.form_key)
    today = clock.now().astimezone(workdays.CHINA_TZ).date()
    holders = partial(_holders, db) if form.user_roles() else None
    return forms.validate(form, data, today=today, locale=locale, holders=holders)


def _holders(db: Database, role: str) -> set[str]:
    """The usernames of ``role``'s active holders (a form's person pickers)."""
    with db.read() as session:
        return {person.username for person in identity.colleagues(session, role, besides=0)}
