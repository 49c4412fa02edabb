"""Start, claim, complete, delegate, correlate, cancel: one unit of work per call, optimistic concurrency.

A running instance's state lives in ``process_instance.state``; its open user tasks are
mirrored into ``human_task`` and its waiting timers into ``timer`` in the same transaction,
with the audit events. Services run on a lean transaction (``engine.txn``) and write rows
with ``engine.store``; a step re-serializes only the tasks it changed (``bpmn.StateWriter``).
The deserialized workflow and its mirror are kept hot per database (``engine.caches``) and
reused only at the version their changes were committed at. Rare paths that need the ORM
(loading a deployed version, looking up a colleague, naming who completed a task) run the
service again in a ``Session``. See docs/engine.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine import (
    assignment,
    audit,
    bpmn,
    caches,
    clock,
    forms,
    identity,
    registry,
    store,
    txn,
    workdays,
)
from engine.db import Database
from engine.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ScriptError,
)
from engine.identity import Actor
from engine.models import HumanTask, ProcessInstance
from engine.store import InstanceRow, TaskRow
from engine.txn import Txn

RUNNING, COMPLETED, CANCELLED, ERROR = "running", "completed", "cancelled", "error"
OPEN, DONE, WITHDRAWN = store.OPEN, store.DONE, store.WITHDRAWN

_T = TypeVar("_T")


# --- results handed back to callers (never ORM objects) ---


@dataclass(frozen=True)
class InstanceSummary:
    id: int
    key: str
    definition_version: int
    status: str
    business_key: str | None
    title: str
    version: int
    open_task_ids: tuple[int, ...]
    error: str | None = None
    error_element: str | None = None


# --- the unit of work around every state change ---


class _NeedsSession(Exception):  # noqa: N818 - control flow, never leaves this module
    """The lean transaction met a rare path that needs the ORM: run the service in a Session."""


def _run(
    db: Database,
    actor: Actor,
    work: Callable[[Txn], _T],
    instance_id: int | None = None,
    *,
    lean: bool = True,
) -> _T:
    """Run a service in a lean transaction, or (rare paths, or ``lean=False``) in a Session."""
    if lean:
        try:
            return _lean(db, actor, work, instance_id)
        except _NeedsSession:
            pass  # rolled back: nothing happened yet
    with _step(db, actor, instance_id=instance_id) as session:
        return work(txn.of_session(session))


def _lean(db: Database, actor: Actor, work: Callable[[Txn], _T], instance_id: int | None) -> _T:
    where: dict[str, Any] = {"instance_id": instance_id, "task_id": None, "task": None}
    try:
        with txn.transaction(db) as tx:
            tx.info["where"] = where
            return work(tx)
    except PermissionDeniedError as exc:
        with txn.transaction(db) as tx:
            _audit_refusal(tx, actor, where, exc)
        raise


@contextmanager
def _step(db: Database, actor: Actor, *, instance_id: int | None = None) -> Iterator[Session]:
    """One ORM transaction; a permission refusal is audited in a transaction of its own."""
    where: dict[str, Any] = {"instance_id": instance_id, "task_id": None, "task": None}
    try:
        with db.unit_of_work() as session:
            session.info["where"] = where
            yield session
    except PermissionDeniedError as exc:
        with db.unit_of_work() as session:
            _audit_refusal(session, actor, where, exc)
        raise
    except StaleDataError as exc:
        raise ConflictError(
            "流程实例已被他人修改，请刷新后重试 / the case was changed by someone else; reload and retry"
        ) from exc


def _audit_refusal(
    target: Session | Txn, actor: Actor, where: Mapping[str, Any], exc: Exception
) -> None:
    audit.record(
        target,
        "permission_denied",
        actor=actor.username,
        instance_id=where["instance_id"],
        task_id=where["task_id"],
        payload={"reason": str(exc), "task": where["task"], "roles": sorted(actor.roles)},
    )


def _where(tx: Txn, task: TaskRow) -> None:
    where = tx.session.info if tx.session is not None else tx.info
    where.get("where", {}).update(instance_id=task.instance_id, task_id=task.bpmn_id, task=task.id)


def _session(tx: Txn) -> Session:
    if tx.session is None:
        raise _NeedsSession
    return tx.session


def _definition(db: Database, tx: Txn, definition_id: int) -> caches.Definition:
    found = caches.of(db).definitions.get(definition_id)
    if found is not None:
        return found
    return caches.of(db).load_definition(_session(tx), definition_id)


def _checkout(
    db: Database, tx: Txn, instance: InstanceRow, definition: caches.Definition
) -> caches.Hot:
    """The instance's hot workflow at the locked row's version, or restored from storage."""
    hot = caches.of(db).checkout(instance.id, instance.version)
    if hot is None:
        workflow = bpmn.load_state(definition.compiled, store.state(tx, instance.id))
        hot = caches.Hot(
            instance.version,
            workflow,
            bpmn.StateWriter(),
            store.open_tasks(tx, instance.id),
            store.waiting_timers(tx, instance.id),
        )
    return hot


def _attempt(step: Callable[[], object]) -> ScriptError | None:
    """Run an engine step; a failing script leaves the workflow with that task in ERROR."""
    try:
        step()
    except ScriptError as exc:
        return exc
    return None


# --- starting ---


def start_instance(
    db: Database,
    actor: Actor,
    key: str,
    data: Mapping[str, Any] | None = None,
    *,
    business_key: str | None = None,
    title: str | None = None,
) -> InstanceSummary:
    """Start the newest version of a process.

    :raise NotFoundError: no such process. A failing first step does not raise: it leaves
        the instance in the error state, with the element and message recorded.
    """
    with _step(db, actor) as session:
        return start_in(db, session, actor, key, data, business_key=business_key, title=title)


def start_in(
    db: Database,
    session: Session,
    actor: Actor,
    key: str,
    data: Mapping[str, Any] | None = None,
    *,
    business_key: str | None = None,
    title: str | None = None,
) -> InstanceSummary:
    """``start_instance`` inside the caller's transaction (the worker's periodic starts)."""
    latest = registry.get_latest(session, key)
    tx = txn.of_session(session)
    definition = caches.of(db).load_definition(session, latest.id)
    now = clock.now()
    instance = InstanceRow(
        0, definition.id, business_key, title or definition.name, RUNNING, actor.id or None, 1,
        None, None, None,
    )  # fmt: skip
    store.insert_instance(tx, instance, "{}", now)
    audit.record(
        tx,
        "instance_started",
        actor=actor.username,
        instance_id=instance.id,
        payload={
            "key": definition.key,
            "version": definition.version,
            "sha256": latest.sha256,
            "business_key": business_key,
            "data": forms.to_json_data(data or {}),
        },
    )
    workflow = bpmn.new_workflow(definition.compiled, {**(data or {}), "starter": actor.username})
    failure = _attempt(lambda: bpmn.run_steps(workflow))
    hot = caches.Hot(instance.version, workflow, bpmn.StateWriter(), {}, frozenset())
    return _persist(db, tx, actor, instance, definition, hot, failure)


# --- persisting a step: status, task mirror, timers, state, audit ---


def _persist(
    db: Database,
    tx: Txn,
    actor: Actor,
    instance: InstanceRow,
    definition: caches.Definition,
    hot: caches.Hot,
    failure: ScriptError | None,
) -> InstanceSummary:
    workflow = hot.workflow
    mirror = bpmn.mirror(workflow)
    _set_status(tx, actor, instance, workflow, failure, mirror.completed)
    state = hot.writer.dump(workflow)
    _sync_tasks(tx, actor, instance, definition, hot, mirror.ready)
    _sync_timers(tx, instance.id, hot, mirror.timers if instance.status == RUNNING else frozenset())
    store.update_instance(tx, instance, state)  # the optimistic lock: version checked and bumped
    hot.version = instance.version
    if instance.status in (RUNNING, ERROR):
        tx.on_commit(partial(caches.of(db).checkin, instance.id, hot))
    return _summary(instance, definition, hot.open_tasks)


def _set_status(
    tx: Txn,
    actor: Actor,
    instance: InstanceRow,
    workflow: Any,
    failure: ScriptError | None,
    completed: bool,
) -> None:
    if failure is not None:
        instance.status, instance.error_element, instance.error_message = (
            ERROR,
            failure.element_id,
            str(failure),
        )
        audit.record(
            tx,
            "instance_failed",
            actor=actor.username,
            instance_id=instance.id,
            task_id=failure.element_id,
            payload={"error": str(failure), "kind": type(failure).__name__},
        )
    elif completed:
        instance.status, instance.ended_at = COMPLETED, clock.now()
        audit.record(
            tx,
            "instance_completed",
            actor=actor.username,
            instance_id=instance.id,
            payload={"data": forms.to_json_data(bpmn.workflow_data(workflow))},
        )
    else:
        instance.status, instance.error_element, instance.error_message = RUNNING, None, None


def _sync_tasks(
    tx: Txn,
    actor: Actor,
    instance: InstanceRow,
    definition: caches.Definition,
    hot: caches.Hot,
    ready: tuple[bpmn.ReadyTask, ...],
) -> None:
    """Open rows whose task is no longer ready are withdrawn; newly ready tasks get a row."""
    ready_ids = {task.task_id for task in ready}
    for spiff_id, (row_id, bpmn_id) in sorted(hot.open_tasks.items(), key=lambda item: item[1]):
        if spiff_id not in ready_ids:
            store.withdraw_task(tx, row_id, clock.now())
            del hot.open_tasks[spiff_id]
            audit.record(
                tx,
                "task_withdrawn",
                actor=actor.username,
                instance_id=instance.id,
                task_id=bpmn_id,
                payload={"task": row_id},
            )
    for task in ready:
        if task.task_id not in hot.open_tasks:
            row_id = _create_task(tx, actor, instance, definition, hot.workflow, task)
            hot.open_tasks[task.task_id] = (row_id, task.bpmn_id)


def _create_task(
    tx: Txn,
    actor: Actor,
    instance: InstanceRow,
    definition: caches.Definition,
    workflow: Any,
    task: bpmn.ReadyTask,
) -> int:
    rules = definition.rules(task.bpmn_id)
    props = rules.properties
    now = clock.now()
    due_at = workdays.deadline_from(now, props["deadline"]) if props.get("deadline") else None
    role = assignment.role_for_lane(task.lane, props)
    assignee = _assignee(
        tx, instance.started_by, props, lambda: bpmn.task_data(workflow, task.task_id)
    )
    row_id = store.insert_task(
        tx,
        store.NewTask(
            instance.id, task.task_id, task.bpmn_id, task.name, task.lane, role, assignee,
            props.get("formKey"), rules.approval, due_at, now,
        ),
    )  # fmt: skip
    audit.record(
        tx,
        "task_created",
        actor=actor.username,
        instance_id=instance.id,
        task_id=task.bpmn_id,
        payload={
            "task": row_id,
            "role": role,
            "assignee": assignee,
            "due_at": due_at.isoformat() if due_at else None,
            "version": definition.version,
        },
    )
    return row_id


def _assignee(
    tx: Txn,
    started_by: int | None,
    props: Mapping[str, str],
    data: Callable[[], Mapping[str, Any]],
) -> int | None:
    rule = assignment.parse_assignee(props.get("assignee"))
    if rule is None or started_by is None:
        return None
    if rule.kind == "starter":
        return started_by
    if rule.kind == "manager_of_starter":
        return store.manager_id(tx, started_by)
    username = assignment.data_assignee(rule, data())
    return store.active_user_id(tx, username) if username else None


def _sync_timers(
    tx: Txn, instance_id: int, hot: caches.Hot, waiting: frozenset[tuple[str, datetime]]
) -> None:
    """Timer rows follow the waiting set; nothing is written when it did not change."""
    if waiting == hot.timers:
        return
    for bpmn_id, fire_at in hot.timers - waiting:
        store.finish_timer(tx, instance_id, bpmn_id, fire_at)
    for bpmn_id, fire_at in sorted(waiting - hot.timers):
        store.add_timer(tx, instance_id, bpmn_id, fire_at)
    hot.timers = waiting


def _summary(
    instance: InstanceRow, definition: caches.Definition, open_tasks: Mapping[str, tuple[int, str]]
) -> InstanceSummary:
    return InstanceSummary(
        instance.id,
        definition.key,
        definition.version,
        instance.status,
        instance.business_key,
        instance.title,
        instance.version,
        tuple(sorted(row_id for row_id, _bpmn_id in open_tasks.values())),
        instance.error_message,
        instance.error_element,
    )


# --- working on tasks ---


def _ensure_open(tx: Txn, task: TaskRow) -> None:
    if task.status == OPEN:
        return
    if task.status == DONE and task.completed_by is not None:
        who = identity.get_actor_by_id(_session(tx), task.completed_by)
        raise ConflictError(
            f"任务已由 {who.display_name}（{who.username}）于 {task.completed_at:%Y-%m-%d %H:%M:%S} 完成 / "
            f"the task was already completed by {who.username}"
        )
    raise ConflictError(
        f"任务已不再待办（{task.status}）/ the task is no longer open ({task.status})"
    )


def _open_task(tx: Txn, task_id: int, *, lock: bool = False) -> tuple[TaskRow, InstanceRow]:
    task, instance = store.task_locking_instance(tx, task_id) if lock else store.task(tx, task_id)
    _where(tx, task)
    _ensure_open(tx, task)
    return task, instance


def claim_task(db: Database, actor: Actor, task_id: int) -> None:
    """Take a role's task for yourself. :raise ConflictError: someone else has it already."""
    _run(db, actor, partial(_claim, db, actor, task_id))


def _claim(db: Database, actor: Actor, task_id: int, tx: Txn) -> None:
    task, instance = _open_task(tx, task_id)
    assignment.check_may_work(actor, task.candidate_role, None)
    _check_segregation(db, tx, actor, task, instance)
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
    _run(db, actor, partial(_unclaim, actor, task_id))


def _unclaim(actor: Actor, task_id: int, tx: Txn) -> None:
    task, _instance = _open_task(tx, task_id)
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
    _run(db, actor, partial(_delegate, db, actor, task_id, to_username), lean=False)


def _delegate(db: Database, actor: Actor, task_id: int, to_username: str, tx: Txn) -> None:
    task, instance = _open_task(tx, task_id)
    assignment.check_may_work(actor, task.candidate_role, task.assignee_id)
    colleague = identity.get_actor(_session(tx), to_username)
    if task.candidate_role and not colleague.has_role(task.candidate_role):
        raise PermissionDeniedError(
            f"{to_username} 没有角色 {task.candidate_role} / lacks the task's role"
        )
    _check_segregation(db, tx, colleague, task, instance)
    store.set_assignee(tx, task_id, colleague.id)
    audit.record(
        tx,
        "task_delegated",
        actor=actor.username,
        instance_id=task.instance_id,
        task_id=task.bpmn_id,
        payload={"task": task_id, "to": to_username},
    )


def complete_task(
    db: Database,
    actor: Actor,
    task_id: int,
    data: Mapping[str, Any],
    expected_version: int | None = None,
) -> InstanceSummary:
    """Validate the task's form data, complete the task and run the process on to its next wait.

    :raise NotFoundError, PermissionDeniedError (audited), ConflictError (someone was faster),
        InvalidInputError (field errors; nothing is saved).
    """
    return _run(db, actor, partial(_complete, db, actor, task_id, data, expected_version))


def _complete(
    db: Database,
    actor: Actor,
    task_id: int,
    data: Mapping[str, Any],
    expected_version: int | None,
    tx: Txn,
) -> InstanceSummary:
    task, instance = _open_task(tx, task_id, lock=True)
    _check_version(instance, expected_version)
    assignment.check_may_work(actor, task.candidate_role, task.assignee_id)
    definition = _check_segregation(db, tx, actor, task, instance)
    cleaned = _validated(db, definition, task, data)
    hot = _checkout(db, tx, instance, definition)
    failure = _attempt(lambda: bpmn.complete_user_task(hot.workflow, task.spiff_task_id, cleaned))
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
    return _persist(db, tx, actor, instance, definition, hot, failure)


def _check_version(instance: InstanceRow, expected_version: int | None) -> None:
    if expected_version is not None and instance.version != expected_version:
        raise ConflictError(
            "流程实例已被他人修改，请刷新后重试 / the case changed since you opened it; reload"
        )


def _check_segregation(
    db: Database, tx: Txn, actor: Actor, task: TaskRow, instance: InstanceRow
) -> caches.Definition:
    """Segregation of duties (queried only when the task has such a rule); returns the version."""
    definition = _definition(db, tx, instance.definition_id)
    rules = definition.rules(task.bpmn_id)
    if rules.segregated:
        done_by = store.completers(tx, instance.id) if rules.segregated_from else {}
        assignment.check_segregation(actor, rules.properties, instance.started_by, done_by)
    return definition


def _validated(
    db: Database, definition: caches.Definition, task: TaskRow, data: Mapping[str, Any]
) -> dict[str, Any]:
    if task.form_key is None:
        if data:
            raise InvalidInputError(
                "此任务没有表单 / this task takes no data",
                {k: ["未知字段 / unknown field"] for k in data},
            )
        return {}
    form = caches.of(db).form(definition, task.form_key)
    return forms.validate(form, data, today=clock.now().astimezone(workdays.CHINA_TZ).date())


# --- messages, cancelling, retrying ---


def correlate_message(
    db: Database,
    actor: Actor,
    message_name: str,
    payload: Mapping[str, Any],
    *,
    instance_id: int | None = None,
    business_key: str | None = None,
) -> InstanceSummary:
    """Deliver an outside party's answer to the instance waiting for it (by id or business key).

    :raise NotFoundError: no running instance. :raise ConflictError: it is not waiting for that message.
    :raise InvalidInputError: the payload does not fit the message's form.
    """
    work = partial(_correlate, db, actor, message_name, payload, instance_id, business_key)
    return _run(db, actor, work, instance_id)


def _correlate(
    db: Database,
    actor: Actor,
    message_name: str,
    payload: Mapping[str, Any],
    instance_id: int | None,
    business_key: str | None,
    tx: Txn,
) -> InstanceSummary:
    instance = store.lock_instance(tx, _find_instance_id(tx, instance_id, business_key))
    if instance.status != RUNNING:
        raise ConflictError(f"流程实例状态为 {instance.status} / the case is {instance.status}")
    definition = _definition(db, tx, instance.definition_id)
    cleaned = _message_payload(db, definition, message_name, payload)
    hot = _checkout(db, tx, instance, definition)
    if message_name not in bpmn.waiting_messages(hot.workflow):
        caches.of(db).checkin(instance.id, hot)  # untouched: still the committed version
        raise ConflictError(
            f"流程实例未在等待消息 {message_name} / the case is not waiting for '{message_name}'"
        )
    failure = _attempt(lambda: bpmn.catch_message(hot.workflow, message_name, cleaned))
    audit.record(
        tx,
        "message_received",
        actor=actor.username,
        instance_id=instance.id,
        payload={"message": message_name, "data": forms.to_json_data(cleaned)},
    )
    return _persist(db, tx, actor, instance, definition, hot, failure)


def _find_instance_id(tx: Txn, instance_id: int | None, business_key: str | None) -> int:
    if instance_id is not None:
        return instance_id
    found = store.running_instance_ids(tx, business_key)
    if not found:
        raise NotFoundError(
            f"没有业务编号为 {business_key} 的进行中实例 / no running case with business key {business_key}"
        )
    if len(found) > 1:
        raise ConflictError(
            f"业务编号 {business_key} 对应多个实例 / several running cases share business key {business_key}"
        )
    return found[0]


def _message_payload(
    db: Database, definition: caches.Definition, name: str, payload: Mapping[str, Any]
) -> dict[str, Any]:
    if name in definition.forms:
        return forms.validate(
            caches.of(db).form(definition, name),
            payload,
            today=clock.now().astimezone(workdays.CHINA_TZ).date(),
        )
    bad = {
        k: ["只允许文本、数字、布尔值 / only text, numbers and booleans"]
        for k, v in payload.items()
        if not isinstance(v, str | int | float | bool) or not str(k).isidentifier()
    }
    if bad:
        raise InvalidInputError("消息数据无效 / invalid message payload", bad)
    return dict(payload)


def cancel_instance(db: Database, actor: Actor, instance_id: int, reason: str) -> InstanceSummary:
    """Cancel a running case (its starter, a manager or an administrator)."""
    return _run(db, actor, partial(_cancel, db, actor, instance_id, reason), instance_id)


def _cancel(db: Database, actor: Actor, instance_id: int, reason: str, tx: Txn) -> InstanceSummary:
    instance = store.lock_instance(tx, instance_id)
    if instance.status not in (RUNNING, ERROR):
        raise ConflictError(f"流程实例状态为 {instance.status} / the case is {instance.status}")
    if instance.started_by != actor.id and not actor.has_role("DM", "ADMIN"):
        raise PermissionDeniedError(
            "只有发起人、部门经理或管理员可以撤销 / only the starter, the manager or an admin may cancel"
        )
    definition = _definition(db, tx, instance.definition_id)
    instance.status, instance.ended_at = CANCELLED, clock.now()
    store.withdraw_all(tx, instance_id)
    audit.record(
        tx,
        "instance_cancelled",
        actor=actor.username,
        instance_id=instance_id,
        payload={"reason": reason},
    )
    store.update_instance(tx, instance, None)
    caches.of(db).drop(instance_id)
    return _summary(instance, definition, {})


def retry_instance(
    db: Database, actor: Actor, instance_id: int, data: Mapping[str, Any] | None = None
) -> InstanceSummary:
    """Run a failed step again, with corrected data, once the cause is fixed (process owner or admin)."""
    return _run(db, actor, partial(_retry, db, actor, instance_id, data), instance_id)


def _retry(
    db: Database, actor: Actor, instance_id: int, data: Mapping[str, Any] | None, tx: Txn
) -> InstanceSummary:
    if not actor.has_role("PO", "ADMIN"):
        raise PermissionDeniedError(
            "只有流程负责人或管理员可以重试 / only a process owner or an admin may retry"
        )
    instance = store.lock_instance(tx, instance_id)
    if instance.status != ERROR:
        raise ConflictError(f"流程实例没有出错（{instance.status}）/ the case is not in error")
    definition = _definition(db, tx, instance.definition_id)
    hot = _checkout(db, tx, instance, definition)
    failure = _attempt(lambda: bpmn.retry_failed(hot.workflow, data))
    audit.record(
        tx,
        "instance_retried",
        actor=actor.username,
        instance_id=instance_id,
        payload={"data": forms.to_json_data(data or {})},
    )
    return _persist(db, tx, actor, instance, definition, hot, failure)


def fire_timers_in(db: Database, session: Session, instance_id: int) -> int:
    """Let the instance's due timers fire, inside the worker's transaction; returns how many fired."""
    actor = identity.SYSTEM
    tx = txn.of_session(session)
    instance = store.lock_instance(tx, instance_id)
    if instance.status != RUNNING:
        return 0
    definition = _definition(db, tx, instance.definition_id)
    hot = _checkout(db, tx, instance, definition)
    due = [t for t in bpmn.waiting_timers(hot.workflow) if t[1] <= clock.now()]
    failure = _attempt(lambda: bpmn.fire_due_timers(hot.workflow))
    for bpmn_id, fire_at in due:
        audit.record(
            tx,
            "timer_fired",
            actor=actor.username,
            instance_id=instance_id,
            task_id=bpmn_id,
            payload={"due": fire_at.isoformat()},
        )
    _persist(db, tx, actor, instance, definition, hot, failure)
    return len(due)


# --- reading one instance ---


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
