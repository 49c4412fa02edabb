"""Start, claim, complete, delegate, correlate, cancel: one unit of work per call, optimistic concurrency.

A running instance's state lives in ``process_instance.state``; its open user tasks are
mirrored into ``human_task`` and its waiting timers into ``timer`` in the same transaction,
with the audit events. Deserialized workflows are kept hot per database and reused only
while the row's version column still matches (any other writer bumps it).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine import assignment, audit, bpmn, clock, forms, identity, registry, workdays
from engine.db import Database
from engine.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ScriptError,
)
from engine.identity import Actor
from engine.models import HumanTask, ProcessDefinition, ProcessInstance, Timer

RUNNING, COMPLETED, CANCELLED, ERROR = "running", "completed", "cancelled", "error"
OPEN, DONE, WITHDRAWN = "open", "completed", "cancelled"


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


# --- per-database caches: hot workflows, compiled versions, parsed forms ---


class _Caches:
    def __init__(self, size: int = 2048):
        self.size = size
        self.workflows: OrderedDict[int, tuple[int, Any]] = OrderedDict()
        self.compiled: dict[int, bpmn.CompiledProcess] = {}
        self.forms: dict[tuple[int, str], forms.FormDefinition] = {}

    def checkout(self, instance_id: int, version: int) -> Any | None:
        """Take the hot workflow out (so no other thread can step it) if its version matches."""
        entry = self.workflows.pop(instance_id, None)
        return entry[1] if entry is not None and entry[0] == version else None

    def checkin(self, instance_id: int, version: int, workflow: Any) -> None:
        self.workflows[instance_id] = (version, workflow)
        if len(self.workflows) > self.size:
            self.workflows.popitem(last=False)


_CACHES: weakref.WeakKeyDictionary[Database, _Caches] = weakref.WeakKeyDictionary()


def _caches(db: Database) -> _Caches:
    caches = _CACHES.get(db)
    if caches is None:
        caches = _CACHES[db] = _Caches()
    return caches


def _compiled(
    db: Database, session: Session, definition: ProcessDefinition
) -> bpmn.CompiledProcess:
    cache = _caches(db).compiled
    compiled = cache.get(definition.id)
    if compiled is None:
        compiled = cache[definition.id] = registry.compiled_version(session, definition)
    return compiled


def _form(db: Database, definition: ProcessDefinition, key: str) -> forms.FormDefinition:
    cache = _caches(db).forms
    form = cache.get((definition.id, key))
    if form is None:
        form = cache[(definition.id, key)] = forms.from_document(definition.forms[key])
    return form


# --- the unit of work around every state change ---


@contextmanager
def _step(db: Database, actor: Actor, *, instance_id: int | None = None) -> Iterator[Session]:
    """One transaction; a permission refusal is audited in a transaction of its own."""
    where: dict[str, Any] = {"instance_id": instance_id, "task_id": None, "task": None}
    try:
        with db.unit_of_work() as session:
            session.info["where"] = where
            yield session
    except PermissionDeniedError as exc:
        with db.unit_of_work() as session:
            audit.record(
                session,
                "permission_denied",
                actor=actor.username,
                instance_id=where["instance_id"],
                task_id=where["task_id"],
                payload={"reason": str(exc), "task": where["task"], "roles": sorted(actor.roles)},
            )
        raise
    except StaleDataError as exc:
        raise ConflictError(
            "流程实例已被他人修改，请刷新后重试 / the case was changed by someone else; reload and retry"
        ) from exc


def _lock_instance(session: Session, instance_id: int) -> ProcessInstance:
    instance = session.get(
        ProcessInstance, instance_id, with_for_update=True, populate_existing=True
    )
    if instance is None:
        raise NotFoundError(f"流程实例不存在 / no case #{instance_id}")
    return instance


def _definition(session: Session, instance: ProcessInstance) -> ProcessDefinition:
    definition = session.get(ProcessDefinition, instance.definition_id)
    if definition is None:
        raise NotFoundError(f"流程版本缺失 / process version #{instance.definition_id} is missing")
    return definition


def _load(
    db: Database, session: Session, instance: ProcessInstance
) -> tuple[ProcessDefinition, bpmn.CompiledProcess, Any]:
    definition = _definition(session, instance)
    compiled = _compiled(db, session, definition)
    workflow = _caches(db).checkout(instance.id, instance.version)
    if workflow is None:
        workflow = bpmn.load_state(compiled, instance.state)
    return definition, compiled, workflow


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
    definition = registry.get_latest(session, key)
    compiled = _compiled(db, session, definition)
    instance = ProcessInstance(
        definition_id=definition.id,
        business_key=business_key,
        title=title or definition.name,
        status=RUNNING,
        state="{}",
        started_by=actor.id or None,
        started_at=clock.now(),
    )
    session.add(instance)
    session.flush()
    audit.record(
        session,
        "instance_started",
        actor=actor.username,
        instance_id=instance.id,
        payload={
            "key": definition.key,
            "version": definition.version,
            "sha256": definition.sha256,
            "business_key": business_key,
            "data": forms.to_json_data(data or {}),
        },
    )
    workflow = bpmn.new_workflow(compiled, {**(data or {}), "starter": actor.username})
    failure = _attempt(lambda: bpmn.run_steps(workflow))
    _persist(db, session, actor, instance, definition, workflow, failure)
    return _summary(session, instance, definition)


def _attempt(step: Callable[[], object]) -> ScriptError | None:
    """Run an engine step; a failing script leaves the workflow with that task in ERROR."""
    try:
        step()
    except ScriptError as exc:
        return exc
    return None


# --- persisting a step: state, task mirror, timers, audit ---


def _persist(
    db: Database,
    session: Session,
    actor: Actor,
    instance: ProcessInstance,
    definition: ProcessDefinition,
    workflow: Any,
    failure: ScriptError | None,
) -> None:
    instance.state = bpmn.dump_state(workflow)
    _set_status(session, actor, instance, workflow, failure)
    _sync_tasks(db, session, actor, instance, definition, workflow)
    _sync_timers(session, instance, workflow)
    session.flush()  # bumps instance.version (the optimistic lock)
    if instance.status in (RUNNING, ERROR):
        _caches(db).checkin(instance.id, instance.version, workflow)


def _set_status(
    session: Session,
    actor: Actor,
    instance: ProcessInstance,
    workflow: Any,
    failure: ScriptError | None,
) -> None:
    if failure is not None:
        instance.status, instance.error_element, instance.error_message = (
            ERROR,
            failure.element_id,
            str(failure),
        )
        audit.record(
            session,
            "instance_failed",
            actor=actor.username,
            instance_id=instance.id,
            task_id=failure.element_id,
            payload={"error": str(failure), "kind": type(failure).__name__},
        )
    elif bpmn.is_completed(workflow):
        instance.status, instance.ended_at = COMPLETED, clock.now()
        audit.record(
            session,
            "instance_completed",
            actor=actor.username,
            instance_id=instance.id,
            payload={"data": forms.to_json_data(bpmn.workflow_data(workflow))},
        )
    else:
        instance.status, instance.error_element, instance.error_message = RUNNING, None, None


def _sync_tasks(
    db: Database,
    session: Session,
    actor: Actor,
    instance: ProcessInstance,
    definition: ProcessDefinition,
    workflow: Any,
) -> None:
    ready = {task.task_id: task for task in bpmn.ready_user_tasks(workflow)}
    open_rows = session.scalars(
        select(HumanTask).where(HumanTask.instance_id == instance.id, HumanTask.status == OPEN)
    ).all()
    for row in open_rows:
        if row.spiff_task_id not in ready:
            row.status, row.completed_at = WITHDRAWN, clock.now()
            audit.record(
                session,
                "task_withdrawn",
                actor=actor.username,
                instance_id=instance.id,
                task_id=row.bpmn_id,
                payload={"task": row.id},
            )
    known = {row.spiff_task_id for row in open_rows}
    for task in ready.values():
        if task.task_id not in known:
            _create_task(session, actor, instance, definition, workflow, task)


def _create_task(
    session: Session,
    actor: Actor,
    instance: ProcessInstance,
    definition: ProcessDefinition,
    workflow: Any,
    task: bpmn.ReadyTask,
) -> None:
    meta = definition.user_tasks.get(task.bpmn_id, {})
    props: Mapping[str, str] = meta.get("properties", {})
    now = clock.now()
    due_at = workdays.deadline_from(now, props["deadline"]) if props.get("deadline") else None
    row = HumanTask(
        instance_id=instance.id,
        spiff_task_id=task.task_id,
        bpmn_id=task.bpmn_id,
        name=task.name,
        lane=task.lane,
        candidate_role=assignment.role_for_lane(task.lane, props),
        assignee_id=_assignee(session, instance, props, bpmn.task_data(workflow, task.task_id)),
        form_key=props.get("formKey"),
        is_approval=props.get("approval", "").lower() == "true",
        status=OPEN,
        due_at=due_at,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        "task_created",
        actor=actor.username,
        instance_id=instance.id,
        task_id=task.bpmn_id,
        payload={
            "task": row.id,
            "role": row.candidate_role,
            "assignee": row.assignee_id,
            "due_at": due_at.isoformat() if due_at else None,
            "version": definition.version,
        },
    )


def _assignee(
    session: Session, instance: ProcessInstance, props: Mapping[str, str], data: Mapping[str, Any]
) -> int | None:
    rule = assignment.parse_assignee(props.get("assignee"))
    if rule is None or instance.started_by is None:
        return None
    if rule.kind == "starter":
        return instance.started_by
    if rule.kind == "manager_of_starter":
        manager = identity.manager_of(session, instance.started_by)
        return manager.id if manager else None
    username = assignment.data_assignee(rule, data)
    return identity.get_actor(session, username).id if username else None


def _sync_timers(session: Session, instance: ProcessInstance, workflow: Any) -> None:
    waiting = set(bpmn.waiting_timers(workflow)) if instance.status == RUNNING else set()
    rows = session.scalars(
        select(Timer).where(Timer.instance_id == instance.id, Timer.status == "waiting")
    ).all()
    existing = {(row.bpmn_id, row.fire_at): row for row in rows}
    for key, row in existing.items():
        if key not in waiting:
            row.status = "done"
    for bpmn_id, fire_at in waiting - set(existing):
        session.add(
            Timer(instance_id=instance.id, bpmn_id=bpmn_id, fire_at=fire_at, status="waiting")
        )


def _summary(
    session: Session, instance: ProcessInstance, definition: ProcessDefinition
) -> InstanceSummary:
    open_ids = session.scalars(
        select(HumanTask.id)
        .where(HumanTask.instance_id == instance.id, HumanTask.status == OPEN)
        .order_by(HumanTask.id)
    ).all()
    return InstanceSummary(
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


# --- working on tasks ---


def _task(session: Session, task_id: int) -> HumanTask:
    task = session.get(HumanTask, task_id, populate_existing=True)
    if task is None:
        raise NotFoundError(f"任务不存在 / no task #{task_id}")
    session.info.get("where", {}).update(
        instance_id=task.instance_id, task_id=task.bpmn_id, task=task.id
    )
    return task


def _ensure_open(session: Session, task: HumanTask) -> None:
    if task.status == OPEN:
        return
    if task.status == DONE and task.completed_by is not None:
        who = identity.get_actor_by_id(session, task.completed_by)
        raise ConflictError(
            f"任务已由 {who.display_name}（{who.username}）于 {task.completed_at:%Y-%m-%d %H:%M:%S} 完成 / "
            f"the task was already completed by {who.username}"
        )
    raise ConflictError(
        f"任务已不再待办（{task.status}）/ the task is no longer open ({task.status})"
    )


def claim_task(db: Database, actor: Actor, task_id: int) -> None:
    """Take a role's task for yourself. :raise ConflictError: someone else has it already."""
    with _step(db, actor) as session:
        task = _task(session, task_id)
        _ensure_open(session, task)
        assignment.check_may_work(actor, task.candidate_role, None)
        _check_segregation(session, actor, task)
        if task.assignee_id == actor.id:
            return
        taken = session.execute(
            update(HumanTask)
            .where(
                HumanTask.id == task_id, HumanTask.assignee_id.is_(None), HumanTask.status == OPEN
            )
            .values(assignee_id=actor.id)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise ConflictError("任务已被他人认领 / the task was claimed by someone else")
        audit.record(
            session,
            "task_claimed",
            actor=actor.username,
            instance_id=task.instance_id,
            task_id=task.bpmn_id,
            payload={"task": task_id},
        )


def unclaim_task(db: Database, actor: Actor, task_id: int) -> None:
    """Give a claimed task back to its role's queue."""
    with _step(db, actor) as session:
        task = _task(session, task_id)
        _ensure_open(session, task)
        if task.assignee_id != actor.id:
            raise PermissionDeniedError(
                "只能退回自己认领的任务 / you can only unclaim your own task"
            )
        task.assignee_id = None
        audit.record(
            session,
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
    with _step(db, actor) as session:
        task = _task(session, task_id)
        _ensure_open(session, task)
        assignment.check_may_work(actor, task.candidate_role, task.assignee_id)
        colleague = identity.get_actor(session, to_username)
        if task.candidate_role and not colleague.has_role(task.candidate_role):
            raise PermissionDeniedError(
                f"{to_username} 没有角色 {task.candidate_role} / lacks the task's role"
            )
        _check_segregation(session, colleague, task)
        task.assignee_id = colleague.id
        audit.record(
            session,
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
    with _step(db, actor) as session:
        task = _task(session, task_id)
        instance = _lock_instance(session, task.instance_id)
        task = _task(session, task_id)
        _ensure_open(session, task)
        _check_version(instance, expected_version)
        assignment.check_may_work(actor, task.candidate_role, task.assignee_id)
        _check_segregation(session, actor, task)
        definition, _compiled_process, workflow = _load(db, session, instance)
        cleaned = _validated(db, definition, task, data)
        failure = _attempt(lambda: bpmn.complete_user_task(workflow, task.spiff_task_id, cleaned))
        task.status, task.completed_at, task.completed_by = DONE, clock.now(), actor.id or None
        task.data = forms.to_json_data(cleaned)
        audit.record(
            session,
            "task_completed",
            actor=actor.username,
            instance_id=instance.id,
            task_id=task.bpmn_id,
            payload={
                "task": task.id,
                "form": task.form_key,
                "data": task.data,
                "version": definition.version,
                "roles": sorted(actor.roles),
            },
        )
        _persist(db, session, actor, instance, definition, workflow, failure)
        return _summary(session, instance, definition)


def _check_version(instance: ProcessInstance, expected_version: int | None) -> None:
    if expected_version is not None and instance.version != expected_version:
        raise ConflictError(
            "流程实例已被他人修改，请刷新后重试 / the case changed since you opened it; reload"
        )


def _check_segregation(session: Session, actor: Actor, task: HumanTask) -> None:
    instance = session.get(ProcessInstance, task.instance_id)
    if instance is None:
        raise NotFoundError(f"流程实例不存在 / no case #{task.instance_id}")
    definition = _definition(session, instance)
    props = definition.user_tasks.get(task.bpmn_id, {}).get("properties", {})
    assignment.check_segregation(
        actor, props, instance.started_by, _completers(session, instance.id)
    )


def _completers(session: Session, instance_id: int) -> dict[str, set[int]]:
    rows = session.execute(
        select(HumanTask.bpmn_id, HumanTask.completed_by).where(
            HumanTask.instance_id == instance_id, HumanTask.status == DONE
        )
    )
    completers: dict[str, set[int]] = {}
    for bpmn_id, user_id in rows:
        if user_id is not None:
            completers.setdefault(bpmn_id, set()).add(user_id)
    return completers


def _validated(
    db: Database, definition: ProcessDefinition, task: HumanTask, data: Mapping[str, Any]
) -> dict[str, Any]:
    if task.form_key is None:
        if data:
            raise InvalidInputError(
                "此任务没有表单 / this task takes no data",
                {k: ["未知字段 / unknown field"] for k in data},
            )
        return {}
    form = _form(db, definition, task.form_key)
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
    with _step(db, actor, instance_id=instance_id) as session:
        instance = _lock_instance(session, _find_instance_id(session, instance_id, business_key))
        if instance.status != RUNNING:
            raise ConflictError(f"流程实例状态为 {instance.status} / the case is {instance.status}")
        definition, _compiled_process, workflow = _load(db, session, instance)
        cleaned = _message_payload(db, definition, message_name, payload)
        if message_name not in bpmn.waiting_messages(workflow):
            _caches(db).checkin(instance.id, instance.version, workflow)
            raise ConflictError(
                f"流程实例未在等待消息 {message_name} / the case is not waiting for '{message_name}'"
            )
        failure = _attempt(lambda: bpmn.catch_message(workflow, message_name, cleaned))
        audit.record(
            session,
            "message_received",
            actor=actor.username,
            instance_id=instance.id,
            payload={"message": message_name, "data": forms.to_json_data(cleaned)},
        )
        _persist(db, session, actor, instance, definition, workflow, failure)
        return _summary(session, instance, definition)


def _find_instance_id(session: Session, instance_id: int | None, business_key: str | None) -> int:
    if instance_id is not None:
        return instance_id
    found = session.scalars(
        select(ProcessInstance.id).where(
            ProcessInstance.business_key == business_key, ProcessInstance.status == RUNNING
        )
    ).all()
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
    db: Database, definition: ProcessDefinition, name: str, payload: Mapping[str, Any]
) -> dict[str, Any]:
    if name in definition.forms:
        return forms.validate(
            _form(db, definition, name),
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
    with _step(db, actor, instance_id=instance_id) as session:
        instance = _lock_instance(session, instance_id)
        if instance.status not in (RUNNING, ERROR):
            raise ConflictError(f"流程实例状态为 {instance.status} / the case is {instance.status}")
        if instance.started_by != actor.id and not actor.has_role("DM", "ADMIN"):
            raise PermissionDeniedError(
                "只有发起人、部门经理或管理员可以撤销 / only the starter, the manager or an admin may cancel"
            )
        instance.status, instance.ended_at = CANCELLED, clock.now()
        for row in session.scalars(
            select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.status == OPEN)
        ):
            row.status = WITHDRAWN
        session.execute(
            update(Timer)
            .where(Timer.instance_id == instance_id, Timer.status == "waiting")
            .values(status="done")
        )
        audit.record(
            session,
            "instance_cancelled",
            actor=actor.username,
            instance_id=instance_id,
            payload={"reason": reason},
        )
        _caches(db).workflows.pop(instance_id, None)
        return _summary(session, instance, _definition(session, instance))


def retry_instance(
    db: Database, actor: Actor, instance_id: int, data: Mapping[str, Any] | None = None
) -> InstanceSummary:
    """Run a failed step again, with corrected data, once the cause is fixed (process owner or admin)."""
    with _step(db, actor, instance_id=instance_id) as session:
        if not actor.has_role("PO", "ADMIN"):
            raise PermissionDeniedError(
                "只有流程负责人或管理员可以重试 / only a process owner or an admin may retry"
            )
        instance = _lock_instance(session, instance_id)
        if instance.status != ERROR:
            raise ConflictError(f"流程实例没有出错（{instance.status}）/ the case is not in error")
        definition, _compiled_process, workflow = _load(db, session, instance)
        failure = _attempt(lambda: bpmn.retry_failed(workflow, data))
        audit.record(
            session,
            "instance_retried",
            actor=actor.username,
            instance_id=instance_id,
            payload={"data": forms.to_json_data(data or {})},
        )
        _persist(db, session, actor, instance, definition, workflow, failure)
        return _summary(session, instance, definition)


def fire_timers_in(db: Database, session: Session, instance_id: int) -> int:
    """Let the instance's due timers fire, inside the worker's transaction; returns how many fired."""
    actor = identity.SYSTEM
    instance = _lock_instance(session, instance_id)
    if instance.status != RUNNING:
        return 0
    definition, _compiled_process, workflow = _load(db, session, instance)
    due = [t for t in bpmn.waiting_timers(workflow) if t[1] <= clock.now()]
    failure = _attempt(lambda: bpmn.fire_due_timers(workflow))
    for bpmn_id, fire_at in due:
        audit.record(
            session,
            "timer_fired",
            actor=actor.username,
            instance_id=instance_id,
            task_id=bpmn_id,
            payload={"due": fire_at.isoformat()},
        )
    _persist(db, session, actor, instance, definition, workflow, failure)
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
        definition = _definition(session, instance)
        workflow = bpmn.load_state(_compiled(db, session, definition), instance.state)
        starter = identity.usernames(session, [instance.started_by] if instance.started_by else [])
        return InstanceView(
            _summary(session, instance, definition),
            starter.get(instance.started_by or 0),
            instance.started_at,
            forms.to_json_data(bpmn.workflow_data(workflow)),
            tuple(bpmn.waiting_messages(workflow)),
            tuple(bpmn.waiting_timers(workflow)),
            tuple(audit.history(session, instance_id)),
        )
