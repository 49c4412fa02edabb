"""Services on a whole instance: start it, deliver it a message, cancel it, retry it, fire its due timers."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from engine import audit, bpmn, forms
from engine.definitions import registry
from engine.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from engine.people import identity
from engine.people.identity import Actor
from engine.runtime.base import caches, unit_of_work
from engine.runtime.services import failures, instance_view
from engine.runtime.step import steps
from engine.runtime.step.steps import CANCELLED, ERROR, RUNNING, InstanceSummary
from engine.storage import store, txn
from engine.storage.db import Database
from engine.storage.store import InstanceRow
from engine.storage.txn import Txn
from engine.timekeeping import clock, workdays


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
    with unit_of_work.step(db, actor) as session:
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
    case = {"starter": actor.username, "case_id": instance.id, "business_key": business_key}
    workflow = bpmn.new_workflow(definition.compiled, {**(data or {}), **case})
    hot = caches.Hot(instance.version, workflow, bpmn.StateWriter(), {}, frozenset())
    failure = steps.attempt(tx, actor, instance.id, hot, lambda: bpmn.run_steps(workflow))
    return steps.persist(db, tx, actor, instance, definition, hot, failure)


def correlate_message(
    db: Database,
    actor: Actor,
    message_name: str,
    payload: Mapping[str, Any],
    *,
    instance_id: int | None = None,
    business_key: str | None = None,
    locale: str = "zh",
) -> InstanceSummary:
    """Deliver an outside party's answer to the instance waiting for it (by id or business key),
    entered by the role that liaises with that party (or an administrator, for integrations).

    :raise NotFoundError: no running instance. :raise ConflictError: it is not waiting for that message.
    :raise PermissionDeniedError: (audited) not the liaising role.
    :raise InvalidInputError: the payload does not fit the message's form (errors in ``locale``).
    """
    work = partial(_correlate, db, actor, message_name, payload, instance_id, business_key, locale)
    return unit_of_work.run(db, actor, work, instance_id)


def _correlate(
    db: Database,
    actor: Actor,
    message_name: str,
    payload: Mapping[str, Any],
    instance_id: int | None,
    business_key: str | None,
    locale: str,
    tx: Txn,
) -> InstanceSummary:
    instance = store.lock_instance(tx, _find_instance_id(tx, instance_id, business_key))
    if instance.status != RUNNING:
        raise ConflictError(f"流程实例状态为 {instance.status} / the case is {instance.status}")
    definition = caches.definition(db, tx, instance.definition_id)
    hot = steps.checkout(db, tx, instance, definition)
    try:
        _check_may_answer(actor, definition, hot.workflow, message_name)
        cleaned = _message_payload(db, definition, message_name, payload, locale)
    except Exception:
        caches.of(db).checkin(instance.id, hot)  # untouched: still the committed version
        raise
    failure = steps.attempt(
        tx, actor, instance.id, hot, lambda: bpmn.catch_message(hot.workflow, message_name, cleaned)
    )
    audit.record(
        tx,
        "message_received",
        actor=actor.username,
        instance_id=instance.id,
        payload={"message": message_name, "data": forms.to_json_data(cleaned)},
    )
    return steps.persist(db, tx, actor, instance, definition, hot, failure)


def _check_may_answer(
    actor: Actor, definition: caches.Definition, workflow: Any, message_name: str
) -> None:
    """:raise ConflictError: nobody waits for it. :raise PermissionDeniedError: not the liaison."""
    awaited = {a.message: a for a in instance_view.awaited_messages(definition, workflow)}
    if message_name not in awaited:
        raise ConflictError(
            f"流程实例未在等待消息 {message_name} / the case is not waiting for '{message_name}'"
        )
    if not instance_view.may_answer(actor, awaited[message_name]):
        role = awaited[message_name].role or "ADMIN"
        raise PermissionDeniedError(
            f"只有 {role} 角色可以录入此外部答复 / only the {role} role may enter this outside answer"
        )


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
    db: Database,
    definition: caches.Definition,
    name: str,
    payload: Mapping[str, Any],
    locale: str,
) -> dict[str, Any]:
    if name in definition.forms:
        return forms.validate(
            caches.of(db).form(definition, name),
            payload,
            today=clock.now().astimezone(workdays.CHINA_TZ).date(),
            locale=locale,
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
    """Cancel a running case with a reason (its starter, a manager or an administrator; a case
    in error also operations).

    :raise InvalidInputError: no reason. :raise PermissionDeniedError: (audited)
    """
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInputError(
            "撤销须说明理由 / a cancellation needs a reason",
            {"reason": ["必填 / required"]},
        )
    return unit_of_work.run(
        db, actor, partial(_cancel, db, actor, instance_id, reason.strip()), instance_id
    )


def _cancel(db: Database, actor: Actor, instance_id: int, reason: str, tx: Txn) -> InstanceSummary:
    instance = store.lock_instance(tx, instance_id)
    if instance.status not in (RUNNING, ERROR):
        raise ConflictError(f"流程实例状态为 {instance.status} / the case is {instance.status}")
    in_error = instance.status == ERROR and failures.may_see_failures(actor)
    if instance.started_by != actor.id and not actor.has_role("DM", "ADMIN") and not in_error:
        raise PermissionDeniedError(
            "只有发起人、部门经理、管理员（出错的流程还有运营管理组）可以撤销 / only the starter,"
            " the manager or an admin (a failed case also operations) may cancel"
        )
    definition = caches.definition(db, tx, instance.definition_id)
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
    return steps.summary(instance, definition, {})


def retry_instance(
    db: Database, actor: Actor, instance_id: int, data: Mapping[str, Any] | None = None
) -> InstanceSummary:
    """Run a failed step again, with corrected data, once the cause is fixed (process owner,
    admin or operations)."""
    return unit_of_work.run(db, actor, partial(_retry, db, actor, instance_id, data), instance_id)


def _retry(
    db: Database, actor: Actor, instance_id: int, data: Mapping[str, Any] | None, tx: Txn
) -> InstanceSummary:
    if not actor.has_role(*failures.RETRIERS):
        raise PermissionDeniedError(
            "只有流程负责人、管理员或运营管理组可以重试 / only a process owner, an admin or"
            " operations may retry"
        )
    instance = store.lock_instance(tx, instance_id)
    if instance.status != ERROR:
        raise ConflictError(f"流程实例没有出错（{instance.status}）/ the case is not in error")
    definition = caches.definition(db, tx, instance.definition_id)
    hot = steps.checkout(db, tx, instance, definition)
    failure = steps.attempt(
        tx, actor, instance.id, hot, lambda: bpmn.retry_failed(hot.workflow, data)
    )
    audit.record(
        tx,
        "instance_retried",
        actor=actor.username,
        instance_id=instance_id,
        payload={"data": forms.to_json_data(data or {})},
    )
    return steps.persist(db, tx, actor, instance, definition, hot, failure)


def fire_timers_in(db: Database, session: Session, instance_id: int) -> int:
    """Let the instance's due timers fire, inside the worker's transaction; returns how many fired."""
    actor = identity.SYSTEM
    tx = txn.of_session(session)
    instance = store.lock_instance(tx, instance_id)
    if instance.status != RUNNING:
        return 0
    definition = caches.definition(db, tx, instance.definition_id)
    hot = steps.checkout(db, tx, instance, definition)
    due = [t for t in bpmn.waiting_timers(hot.workflow) if t[1] < clock.now()]
    failure = steps.attempt(tx, actor, instance.id, hot, lambda: bpmn.fire_due_timers(hot.workflow))
    # the timers the worker found due are recorded here (a cycle fires without completing)
    fired_here = {bpmn_id for bpmn_id, _fire_at in due}
    hot.events[:] = [e for e in hot.events if not (e[0] == "timer_fired" and e[1] in fired_here)]
    for bpmn_id, fire_at in due:
        audit.record(
            tx,
            "timer_fired",
            actor=actor.username,
            instance_id=instance_id,
            task_id=bpmn_id,
            payload={"due": fire_at.isoformat()},
        )
    steps.persist(db, tx, actor, instance, definition, hot, failure)
    return len(due)
