"""Who holds a task: claim, unclaim and delegate it, with the open-task and segregation-of-duties checks."""

from __future__ import annotations

from functools import partial

from engine import audit, notifications
from engine.errors import ConflictError, PermissionDeniedError
from engine.people import identity
from engine.people.identity import Actor
from engine.runtime.base import access, unit_of_work
from engine.storage import store
from engine.storage.db import Database
from engine.storage.store import DONE, OPEN, InstanceRow, TaskRow
from engine.storage.txn import Txn


def claim_task(db: Database, actor: Actor, task_id: int) -> None:
    """Take a role's task for yourself. :raise ConflictError: someone else has it already."""
    unit_of_work.run(db, actor, partial(_claim, db, actor, task_id))


def _claim(db: Database, actor: Actor, task_id: int, tx: Txn) -> None:
    task, instance = open_task(tx, task_id)
    access.check_may_act(db, tx, actor, task, instance, taking=True)
    if task.assignee_id == actor.id:
        return
    if not store.claim(tx, task_id, actor.id):
        raise ConflictError("任务已被他人认领 / the task was claimed by someone else")
    audit.record(
        tx,
        "task_claimed",
        actor=actor.username,
        instance_id=task.instance_id,
        task_id=task.bpmn_id,
        payload={"task": task_id},
    )


def unclaim_task(db: Database, actor: Actor, task_id: int) -> None:
    """Give a claimed task back to its role's queue."""
    unit_of_work.run(db, actor, partial(_unclaim, actor, task_id))


def _unclaim(actor: Actor, task_id: int, tx: Txn) -> None:
    task, _instance = open_task(tx, task_id)
    if task.assignee_id != actor.id:
        raise PermissionDeniedError("只能退回自己认领的任务 / you can only unclaim your own task")
    store.set_assignee(tx, task_id, None)
    audit.record(
        tx,
        "task_unclaimed",
        actor=actor.username,
        instance_id=task.instance_id,
        task_id=task.bpmn_id,
        payload={"task": task_id},
    )


def delegate_task(db: Database, actor: Actor, task_id: int, to_username: str) -> None:
    """Hand a task to a colleague who holds the task's role.

    :raise PermissionDeniedError: the actor may not work the task, or the colleague lacks the role.
    """
    # the colleague is looked up with identity.get_actor, through the ORM
    unit_of_work.run(db, actor, partial(_delegate, db, actor, task_id, to_username), lean=False)


def _delegate(db: Database, actor: Actor, task_id: int, to_username: str, tx: Txn) -> None:
    task, instance = open_task(tx, task_id)
    access.check_may_act(db, tx, actor, task, instance)  # a recused person may not pick either
    colleague = identity.get_actor(unit_of_work.orm_session(tx), to_username)
    if task.candidate_role is None:
        raise PermissionDeniedError(
            "此任务只能由本人处理，不能转办 / only the person it is for may work this task"
        )
    if not colleague.has_role(task.candidate_role):
        raise PermissionDeniedError(
            f"{to_username} 没有角色 {task.candidate_role} / {to_username} lacks the task's role"
        )
    # the colleague must be someone who could have worked it: recusal, segregation of duties
    access.check_may_act(db, tx, colleague, task, instance, taking=True)
    store.set_assignee(tx, task_id, colleague.id)
    if colleague.id != actor.id:
        name, due_at = notifications.task_label(tx, task_id)
        params = notifications.task_params(name, instance.title, due_at, by=actor.display_name)
        notice = notifications.Notice(
            notifications.DELEGATED, task.instance_id, task_id, params, (colleague.id,)
        )
        notifications.notify(tx, [notice])
    audit.record(
        tx,
        "task_delegated",
        actor=actor.username,
        instance_id=task.instance_id,
        task_id=task.bpmn_id,
        payload={"task": task_id, "to": to_username},
    )


def _ensure_open(tx: Txn, task: TaskRow) -> None:
    if task.status == OPEN:
        return
    if task.status == DONE and task.completed_by is not None:
        who = identity.get_actor_by_id(unit_of_work.orm_session(tx), task.completed_by)
        raise ConflictError(
            f"任务已由 {who.display_name}（{who.username}）于 {task.completed_at:%Y-%m-%d %H:%M:%S} 完成 / "
            f"the task was already completed by {who.username}"
        )
    raise ConflictError(
        f"任务已不再待办（{task.status}）/ the task is no longer open ({task.status})"
    )


def open_task(tx: Txn, task_id: int, *, lock: bool = False) -> tuple[TaskRow, InstanceRow]:
    """The task with its instance, checked open; ``lock`` locks the instance row first.

    :raise NotFoundError: no such task. :raise ConflictError: it is no longer open.
    """
    task, instance = store.task_locking_instance(tx, task_id) if lock else store.task(tx, task_id)
    unit_of_work.note_task(tx, task)
    _ensure_open(tx, task)
    return task, instance
